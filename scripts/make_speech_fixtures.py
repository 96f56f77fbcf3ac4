"""Render the dialogue scripts with espeak-ng into Opus fixtures with measured speech times."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from qualmon.sim.audio import SAMPLE_RATE, SAMPLES_PER_PACKET, encode_opus
from qualmon.sim.dialogue import (
    ROLES,
    SCRIPTS,
    Script,
    fixture_files,
    ground_truth_turns,
    load_fixture,
    pack_packets,
)

FIXTURES = Path(__file__).resolve().parent.parent / "qualmon" / "sim" / "fixtures"
VOICES = {"therapist": "en-us+m3", "client": "en-us+f3"}
SPEED_WPM = 165
THRESHOLD_FRACTION = 0.01
PEAK_DBFS = -3.0
NOISE_DBFS = -70.0
NOISE_SEED = 20240
BIT_RATE = 16000
FULL_SCALE = 32767
OPUS_LOOKAHEAD_SAMPLES = 312  # libopus: decoded audio lags the source timeline by 6.5 ms
PAUSE_SECONDS = 0.200  # an annotator does not count a pause this long as speech


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"text-to-speech:\s*(\S+)", out.stdout)
    return match.group(1) if match else out.stdout.strip()


def synthesize(text: str, voice: str, folder: Path) -> np.ndarray:
    """espeak-ng → 48 kHz mono float (full scale 1.0), trimmed and peak-normalised."""
    wav = folder / "utterance.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(wav)) as container:
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    pcm = np.concatenate(chunks).astype(np.float64) / FULL_SCALE
    loud = np.flatnonzero(np.abs(pcm) > THRESHOLD_FRACTION)
    if len(loud) == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    pcm = pcm[loud[0] : loud[-1] + 1]
    return pcm * (10 ** (PEAK_DBFS / 20) / np.max(np.abs(pcm)))


def render(script: Script, folder: Path) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """Per role the int16 timeline, and per utterance its true (first, end) sample.

    The true times are on the source timeline; audio decoded from the packets lags them by
    the Opus lookahead (6.5 ms), well under one 20 ms packet.
    """
    total_samples = round(script.seconds * SAMPLE_RATE)
    if total_samples % SAMPLES_PER_PACKET:
        raise ValueError(f"{script.name}: seconds must be a multiple of 20 ms")
    tracks = {role: np.zeros(total_samples) for role in ROLES}
    busy_until = dict.fromkeys(ROLES, 0)
    placed: list[tuple[int, int]] = []
    for u in script.utterances:
        pcm = synthesize(u.text, VOICES[u.role], folder)
        start = round(u.start_seconds * SAMPLE_RATE)
        end = start + len(pcm)
        if start < busy_until[u.role] or end > total_samples:
            raise ValueError(f"{script.name}: {u.role} at {u.start_seconds} s does not fit")
        tracks[u.role][start:end] += pcm
        busy_until[u.role] = end
        placed.append((start, end))
    rng = np.random.default_rng(NOISE_SEED)
    timelines: dict[str, np.ndarray] = {}
    for role in ROLES:
        noisy = tracks[role] + rng.normal(0.0, 10 ** (NOISE_DBFS / 20), total_samples)
        timelines[role] = np.round(np.clip(noisy, -1, 1) * FULL_SCALE).astype(np.int16)
    # Measure on the final timeline, as a listener with a perfect VAD would.
    threshold = THRESHOLD_FRACTION * FULL_SCALE
    true_samples: list[tuple[int, int]] = []
    for u, (start, end) in zip(script.utterances, placed, strict=True):
        loud = np.flatnonzero(np.abs(timelines[u.role][start:end].astype(np.int32)) > threshold)
        true_samples.append((start + int(loud[0]), start + int(loud[-1]) + 1))
    return timelines, true_samples


def pauses_within(timeline: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """Pauses of PAUSE_SECONDS or more inside [start, end): stretches with no sample above the
    speech threshold (espeak's comma and sentence pauses), as (first, end) samples."""
    threshold = THRESHOLD_FRACTION * FULL_SCALE
    loud = start + np.flatnonzero(np.abs(timeline[start:end].astype(np.int32)) > threshold)
    shortest = round(PAUSE_SECONDS * SAMPLE_RATE)
    return [(int(a) + 1, int(b)) for a, b in itertools.pairwise(loud) if b - a - 1 >= shortest]


def decoded_timelines(script_name: str) -> dict[str, np.ndarray]:
    """The committed packets decoded by libopus at 48 kHz, moved back by its lookahead onto
    the source timeline (for annotating fixtures made before pauses were written down)."""
    fixture = load_fixture(script_name)
    timelines = {}
    for role in ROLES:
        codec = av.CodecContext.create("libopus", "r")
        codec.sample_rate = SAMPLE_RATE
        chunks = []
        for payload in fixture.packets[role]:
            for frame in codec.decode(av.Packet(payload)):
                chunks.append(frame.to_ndarray().reshape(frame.samples, -1)[:, 0])
        pcm = np.concatenate(chunks)
        if pcm.dtype != np.int16:
            pcm = np.round(np.clip(pcm, -1, 1) * FULL_SCALE).astype(np.int16)
        timelines[role] = pcm[OPUS_LOOKAHEAD_SAMPLES:]
    return timelines


def annotate_pauses(script_name: str) -> Path:
    """Add each utterance's pauses to a committed manifest, measured on its decoded audio."""
    manifest_name, _ = fixture_files(script_name)
    path = FIXTURES / manifest_name
    manifest = json.loads(path.read_text(encoding="utf-8"))
    timelines = decoded_timelines(script_name)
    for u in manifest["utterances"]:
        first = round(u["true_start_seconds"] * SAMPLE_RATE)
        end = round(u["true_end_seconds"] * SAMPLE_RATE)
        u["pauses"] = [
            [round(a / SAMPLE_RATE, 4), round(b / SAMPLE_RATE, 4)]
            for a, b in pauses_within(timelines[u["role"]], first, end)
        ]
    manifest["generation"]["pauses"] = (
        f"stretches of >= {PAUSE_SECONDS} s inside an utterance with no sample above the"
        " speech threshold, measured on the decoded packets (lag removed)"
    )
    _write_manifest(path, manifest)
    return path


def write(script: Script, version: str) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        timelines, true_samples = render(script, Path(tmp))
    packet_count = len(timelines[ROLES[0]]) // SAMPLES_PER_PACKET
    manifest_name, packet_names = fixture_files(script.name)
    written: list[Path] = []
    for role in ROLES:
        # The encoder flush can add one packet of lookahead tail: keep the tracks equal length.
        packets = encode_opus(timelines[role], bit_rate=BIT_RATE)[:packet_count]
        if len(packets) != packet_count:
            raise RuntimeError(f"{role}: {len(packets)} packets, expected {packet_count}")
        path = FIXTURES / packet_names[role]
        path.write_bytes(pack_packets(packets))
        written.append(path)

    def seconds(sample: int) -> float:
        return round(sample / SAMPLE_RATE, 4)

    utterances = [
        {
            "role": u.role,
            "start_seconds": u.start_seconds,
            "text": u.text,
            "kind": u.kind,
            "true_start_seconds": seconds(first),
            "true_end_seconds": seconds(end),
        }
        for u, (first, end) in zip(script.utterances, true_samples, strict=True)
    ]
    for u, (first, end) in zip(utterances, true_samples, strict=True):
        u["pauses"] = [
            [seconds(a), seconds(b)]
            for a, b in pauses_within(timelines[str(u["role"])], first, end)
        ]
    manifest = {
        "script": script.name,
        "seconds": script.seconds,
        "packets_per_role": packet_count,
        "ptime_seconds": SAMPLES_PER_PACKET / SAMPLE_RATE,
        "segments": {
            role: [
                [u["true_start_seconds"], u["true_end_seconds"]]
                for u in utterances
                if u["role"] == role
            ]
            for role in ROLES
        },
        "utterances": utterances,
        "espeak_ng_version": version,
        "generation": {
            "voices": VOICES,
            "speed_wpm": SPEED_WPM,
            "sample_rate_hz": SAMPLE_RATE,
            "speech_threshold_fraction_of_full_scale": THRESHOLD_FRACTION,
            "utterance_peak_dbfs": PEAK_DBFS,
            "noise_rms_dbfs": NOISE_DBFS,
            "noise_seed": NOISE_SEED,
            "opus_bit_rate": BIT_RATE,
            "decoded_audio_lag_seconds": OPUS_LOOKAHEAD_SAMPLES / SAMPLE_RATE,
            "packet_file_format": "per packet: 2-byte big-endian length, then the payload",
        },
    }
    path = FIXTURES / manifest_name
    _write_manifest(path, manifest)
    written.append(path)
    return written


def _write_manifest(path: Path, manifest: dict[str, object]) -> None:
    text = json.dumps(manifest, indent=1)
    # One line per [start, end] pair keeps the manifest readable.
    text = re.sub(r"\[\s+([-\d.]+),\s+([-\d.]+)\s+\]", r"[\1, \2]", text)
    path.write_text(text + "\n", encoding="utf-8")


def main() -> None:
    if sys.argv[1:] == ["--pauses-only"]:
        # Without espeak-ng: add pauses to the committed fixtures, audio unchanged.
        for script in SCRIPTS.values():
            print(annotate_pauses(script.name))
        return
    FIXTURES.mkdir(parents=True, exist_ok=True)
    version = espeak_version()
    total_bytes = 0
    for script in SCRIPTS.values():
        for path in write(script, version):
            size = path.stat().st_size
            total_bytes += size
            print(f"{path.relative_to(FIXTURES.parent.parent.parent)}: {size / 1000:.1f} kB")
        summary = ground_truth_turns(load_fixture(script.name))
        print(f"{script.name} ({script.seconds} s):")
        for key, value in summary.items():
            if key == "turn_spans":
                continue
            print(f"  {key}: {_rounded(value)}")
    print(f"total: {total_bytes / 1000:.1f} kB (espeak-ng {version})")


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    main()
