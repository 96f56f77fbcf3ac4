"""The realistic speech corpus as named fixtures, made at test time from the fetched recordings.

A fixture is "<dialogue>/<variant>": three dialogues (`corpus.SPECS`) in five variants
(`rooms.VARIANTS`). Loss and outages are not in the audio: the publisher applies them, so
"<dialogue>/<variant>+loss5" (5 % random loss) and "+outage" (0.5 s in the client's speech,
0.5 s in a silence) only add an `ImpairmentConfig` for the client leg. Each leg is encoded
by libopus straight from its 16 kHz audio into the 20 ms packets `WhipPublisher(packets=…)`
and `EncodedAudioTrack` replay; packets are cached per process and on disk next to the
recordings, keyed by the audio's hash. Decoded audio lags the truth by libopus's 6.5 ms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .audio import encode_opus
from .corpus import SPECS, DialogueTruth, place
from .dialogue import ROLES, pack_packets, unpack_packets
from .impairment import ImpairmentConfig
from .phrases import RATE, Voice, load_voices
from .rooms import VARIANTS, LegConditions, RenderedDialogue, render

BIT_RATE = 32000
"What a browser sends for a mono voice."
OUTAGE_SECONDS = 0.5
LOSS_SEED = 11
IMPAIRED_ROLE = "client"
PUBLISH_IMPAIRMENTS = ("loss5", "outage")


@dataclass(frozen=True)
class CorpusFixture:
    """One fixture ready to publish: per role, Opus packets covering the whole track."""

    name: str
    truth: DialogueTruth
    conditions: Mapping[str, LegConditions]
    packets: Mapping[str, list[bytes]]
    impairments: Mapping[str, ImpairmentConfig]
    "Per role, what the publisher does to the traffic (only the impaired role, if any)."

    @property
    def seconds(self) -> float:
        return self.truth.seconds


def fixture_names(*, with_impairments: bool = False) -> list[str]:
    names = [f"{d}/{v}" for d in SPECS for v in VARIANTS]
    if with_impairments:
        names += [f"{n}+{i}" for n in names for i in PUBLISH_IMPAIRMENTS]
    return names


def impairment_for(truth: DialogueTruth, kind: str) -> ImpairmentConfig:
    """The publish-time impairment of the client leg ('loss5' or 'outage')."""
    if kind == "loss5":
        return ImpairmentConfig(loss_ratio=0.05, seed=LOSS_SEED)
    if kind != "outage":
        raise ValueError(f"unknown impairment {kind!r}; known: {PUBLISH_IMPAIRMENTS}")
    spans = truth.speech
    start, end = max(spans[IMPAIRED_ROLE], key=lambda s: s[1] - s[0])
    in_speech = (start + end - OUTAGE_SECONDS) / 2
    everyone = sorted(s for role in ROLES for s in spans[role])
    quiet, reached = [], everyone[0][1]
    for a, b in everyone[1:]:
        if a > reached:
            quiet.append((reached, a))
        reached = max(reached, b)
    q0, q1 = max(quiet, key=lambda q: q[1] - q[0])
    if q1 - q0 < OUTAGE_SECONDS + 0.4:
        raise ValueError(f"{truth.name}: no silence long enough for an outage")
    in_silence = (q0 + q1 - OUTAGE_SECONDS) / 2
    return ImpairmentConfig(
        outages=tuple(sorted(((in_speech, OUTAGE_SECONDS), (in_silence, OUTAGE_SECONDS))))
    )


class Corpus:
    """The fetched voices, cut once; dialogues placed once; audio and packets on demand."""

    def __init__(self, root: Path, *, voices: Mapping[str, Voice] | None = None) -> None:
        self.root = root
        self.voices: Mapping[str, Voice] = voices if voices is not None else load_voices(root)
        self._truths: dict[str, DialogueTruth] = {}
        self._packets: dict[str, list[bytes]] = {}

    def truth(self, dialogue: str) -> DialogueTruth:
        if dialogue not in self._truths:
            self._truths[dialogue] = place(SPECS[dialogue], self.voices)
        return self._truths[dialogue]

    def render(self, name: str) -> RenderedDialogue:
        """The 16 kHz legs of "<dialogue>/<variant>" (not cached: megabytes per fixture)."""
        dialogue, _, variant = name.partition("+")[0].partition("/")
        if dialogue not in SPECS or variant not in VARIANTS:
            raise ValueError(f"unknown corpus fixture {name!r}")
        return render(self.truth(dialogue), self.voices, VARIANTS[variant])

    def renders(self) -> Iterator[RenderedDialogue]:
        """Every dialogue in every variant, one at a time."""
        for name in fixture_names():
            yield self.render(name)

    def fixture(self, name: str) -> CorpusFixture:
        """A fixture by name, its packets encoded (or read from the cache)."""
        base, _, impairment = name.partition("+")
        rendered = self.render(base)
        impairments = {}
        if impairment:
            impairments[IMPAIRED_ROLE] = impairment_for(rendered.truth, impairment)
        packets = self.packets(rendered)
        return CorpusFixture(name, rendered.truth, rendered.conditions, packets, impairments)

    def packets(self, rendered: RenderedDialogue) -> dict[str, list[bytes]]:
        """Per role, the leg's Opus packets (encoded, or read from the cache)."""
        return {role: self._encoded(rendered, role) for role in ROLES}

    def _encoded(self, rendered: RenderedDialogue, role: str) -> list[bytes]:
        pcm = rendered.legs[role].pcm16()
        digest = hashlib.sha256(pcm.tobytes() + BIT_RATE.to_bytes(4, "big")).hexdigest()[:20]
        if digest in self._packets:
            return self._packets[digest]
        path = self.root / "opus" / f"{digest}.bin"
        if path.is_file():
            packets = unpack_packets(path.read_bytes())
        else:
            count = len(pcm) // round(RATE * 0.020)
            # The encoder's flush adds a packet of lookahead tail: keep the legs equal length.
            packets = encode_opus(pcm, bit_rate=BIT_RATE, sample_rate=RATE)[:count]
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(pack_packets(packets))
            partial.replace(path)
        self._packets[digest] = packets
        return packets
