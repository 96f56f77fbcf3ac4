"""`qualmon bench --speech`: speech and talk-turn accuracy on the realistic corpus, and the
speech path's cost.

1. Offline, every corpus fixture through the speech path (VadFramer → VoiceClassifier →
   SpeechSegmenter, both legs on one clock): frame precision/recall/F1 against the truth,
   speech-seconds, talk-share, overlap, turn-count and response-gap errors.
2. With `--whip`, the same fixtures (and their +loss5 / +outage variants) published over
   WHIP to an in-process service in real time, `--batch` sessions at a time: the issue's goals
   are judged on these numbers. Residual echo's cost is the overlap an echo variant adds over
   its clean twin, per minute.
3. The speech path's CPU: offline per leg-second (libopus decode at 16 kHz, webrtcvad, the
   voice features, classifier and segmenter), and, with `--rounds` > 0, measured in the
   service the way `qualmon bench` does: (full − network) / bare aiortc receive, median of
   rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from ..core.speech import SpeechSegmenter
from ..core.voice import VoiceClassifier
from ..media.speech import OpusPacketSpeech
from ..sim.corpus_fixtures import Corpus, fixture_names
from ..sim.dialogue import ROLES
from ..sim.speech_score import SpeechScore, echo_overlap_per_minute, score, table
from ..sim.speech_sources import SourcesUnavailable, fetch_speech_sources
from . import pipeline, receiver

GOAL_SHARE_PP = 2.0
GOAL_SHARE_LOSS_PP = 3.0
GOAL_SPEECH = 0.05
GOAL_OVERLAP = 0.25
GOAL_TURNS = 1
GOAL_GAP_SECONDS = 0.100
GOAL_ECHO_OVERLAP_PER_MINUTE = 0.3
GOAL_COST_RATIO = 0.15
PACKET_SECONDS = 0.020


def goal_lines(scores: Sequence[SpeechScore]) -> list[str]:
    """How many fixtures hold each goal, and the worst error."""
    plain = [s for s in scores if "+loss5" not in s.name]
    lossy = [s for s in scores if "+loss5" in s.name]

    def line(label: str, values: list[float], goal: float, unit: str) -> str:
        held = sum(1 for v in values if abs(v) <= goal + 1e-9)
        worst = max(values, key=abs) if values else 0.0
        counted = f"{held:>3}/{len(values):<3}"
        return f"{label:<34} {counted} worst {worst:+.2f}{unit}  (goal ±{goal:g}{unit})"

    gaps = [
        s.measured.response_gaps[r].median_seconds - true  # type: ignore[union-attr]
        for s in plain
        for r in ROLES
        if (true := s.truth_median_gap_seconds[r]) is not None
        and s.measured.response_gaps[r] is not None
    ]
    lines = [
        line("talk share, pp", [s.talk_share_error_pp for s in plain], GOAL_SHARE_PP, " pp"),
        line(
            "speech seconds per role, %",
            [100 * s.speech_error(r) for s in plain for r in ROLES],
            100 * GOAL_SPEECH,
            " %",
        ),
        line("overlap, %", [100 * s.overlap_error for s in plain], 100 * GOAL_OVERLAP, " %"),
        line(
            "turn count per role",
            [float(s.measured.turn_count[r] - s.truth_turn_count[r]) for s in plain for r in ROLES],
            GOAL_TURNS,
            "",
        ),
        line(
            "response-gap median per role, ms",
            [1000 * g for g in gaps],
            1000 * GOAL_GAP_SECONDS,
            " ms",
        ),
    ]
    if lossy:
        lines.append(
            line(
                "talk share with 5 % loss, pp",
                [s.talk_share_error_pp for s in lossy],
                GOAL_SHARE_LOSS_PP,
                " pp",
            )
        )
    echo = echo_overlap_per_minute(plain)
    if echo:
        worst = max(echo.values())
        held = sum(1 for v in echo.values() if v < GOAL_ECHO_OVERLAP_PER_MINUTE)
        detail = ", ".join(f"{k} {v:+.2f}" for k, v in echo.items())
        lines.append(
            f"{'echo −30 dB: added overlap, s/min':<34} {held:>3}/{len(echo):<3}"
            f" worst {worst:+.2f} s"
            f"  (goal < {GOAL_ECHO_OVERLAP_PER_MINUTE:g} s; {detail})"
        )
    return lines


def offline_cost_us_per_leg_second(corpus: Corpus, names: Sequence[str]) -> float:
    """CPU of the speech path per leg-second of Opus audio, in this process (median)."""
    costs = []
    for name in names:
        fixture = corpus.fixture(name)
        for role in ROLES:
            packets = fixture.packets[role]
            voice = VoiceClassifier(SpeechSegmenter())
            speech = OpusPacketSpeech(sink=voice, session_time_of=lambda ts: ts / 48000)
            started = time.process_time()
            for index, payload in enumerate(packets):
                speech.on_packet(
                    ssrc=1,
                    sequence_number=index & 0xFFFF,
                    rtp_timestamp=index * 960,
                    payload=payload,
                )
            voice.flush()
            spent = time.process_time() - started
            speech.close()
            costs.append(1e6 * spent / (len(packets) * PACKET_SECONDS))
    return statistics.median(costs)


async def run_speech_bench(args: argparse.Namespace) -> int:
    try:
        corpus = Corpus(fetch_speech_sources())
    except SourcesUnavailable as exc:
        print(f"qualmon bench --speech: {exc}")
        return 2
    names = fixture_names()
    print(f"offline: {len(names)} corpus fixtures through the speech path", flush=True)
    offline = [score(corpus.render(name)) for name in names]
    print(table(offline))
    for line in goal_lines(offline):
        print("  " + line)
    cost = offline_cost_us_per_leg_second(corpus, names)
    print(f"\nspeech path CPU offline: {cost:.0f} µs per leg-second (median over legs)", flush=True)
    if args.whip:
        await _whip(corpus, names, args.batch)
    if args.rounds > 0:
        await _cost_in_service(args)
    return 0


async def _whip(corpus: Corpus, names: list[str], batch: int) -> None:
    from ..sim.corpus_whip import run_fixtures

    with_impairments = names + [
        f"{d}/room+{i}"
        for d in ("balanced", "therapist_heavy", "client_heavy")
        for i in ("loss5", "outage")
    ]
    print(
        f"\nover WHIP in real time: {len(with_impairments)} fixtures, {batch} sessions at a time",
        flush=True,
    )
    scores: list[SpeechScore] = []
    for first in range(0, len(with_impairments), batch):
        chunk = with_impairments[first : first + batch]
        print(f"  {', '.join(chunk)}", flush=True)
        runs = await run_fixtures([corpus.fixture(n) for n in chunk])
        scores += [run.score for run in runs]
    print(table(scores))
    for line in goal_lines(scores):
        print("  " + line)


async def _cost_in_service(args: argparse.Namespace) -> None:
    print(
        f"\nspeech path in the service: {args.rounds} rounds of bare / network / full,"
        f" {args.legs} legs, {args.seconds:g} s",
        flush=True,
    )
    ratios = []
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", flush=True)
        by_mode = {
            mode: await pipeline.measure(mode, args.legs, args.seconds) for mode in receiver.MODES
        }
        bare = by_mode["bare"].cpu_ms_per_leg_second
        speech = by_mode["qualmon"].cpu_ms_per_leg_second - by_mode["network"].cpu_ms_per_leg_second
        ratios.append(speech / bare)
    spread = ", ".join(f"{r:.3f}" for r in ratios)
    print(
        f"speech path / bare aiortc receive: median {statistics.median(ratios):.3f} [{spread}]"
        f"  (goal <= {GOAL_COST_RATIO})"
    )
