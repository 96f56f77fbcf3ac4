"""Synthetic report checkpoints for store, API and browser tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from qualmon.reports.model import (
    Checkpoint,
    DropoutMark,
    LegAggregate,
    SpeechSpan,
    TimelinePoint,
)

ROLES = ("therapist", "client")
TURNS: dict[str, Any] = {
    "talk_share": {"therapist": 0.59, "client": 0.41},
    "speech_seconds": {"therapist": 35.4, "client": 24.6},
    "turn_count": {"therapist": 6, "client": 5},
    "mean_turn_seconds": {"therapist": 5.9, "client": 4.9},
    "interruptions": {"therapist": 0, "client": 1},
}


def leg(role: str, **overrides: Any) -> LegAggregate:
    base = LegAggregate(
        role=role,
        packets_received=5000,
        packets_lost=50,
        loss_ratio=50 / 5050,
        jitter_p50_seconds=0.002,
        jitter_p95_seconds=0.006,
        rtt_p50_seconds=0.040,
        rtt_p95_seconds=0.080,
        mos_min=3.4,
        mos_mean=4.2,
        dropouts=2 if role == "client" else 0,
        dropout_seconds=0.9 if role == "client" else 0.0,
        dropouts_in_speech=2 if role == "client" else 0,
        dropout_in_speech_seconds=0.9 if role == "client" else 0.0,
        speech_seconds=TURNS["speech_seconds"][role],
        reconnects=0,
        end_reason=None,
    )
    return replace(base, **overrides)


def points(role: str, buckets: range, *, bad: tuple[int, ...] = ()) -> tuple[TimelinePoint, ...]:
    """One point per 5 s bucket; `bad` buckets have a low MOS and one more dropout each."""
    out, dropouts = [], 0
    for b in buckets:
        if b in bad:
            dropouts += 1
        out.append(
            TimelinePoint(
                role=role,
                t_seconds=b * 5.0,
                recent_loss_ratio=0.08 if b in bad else 0.0,
                jitter_seconds=0.003,
                rtt_seconds=0.04,
                mos=3.3 if b in bad else 4.3,
                speaking=b % 2 == 0,
                stalled=False,
                dropouts=dropouts,
            )
        )
    return tuple(out)


def checkpoint(
    session_id: str = "S1", *, started_at: float = 1_790_000_000.0, seconds: float = 60.0, **kw: Any
) -> Checkpoint:
    """A 60 s two-role session, still live (no end) unless overridden."""
    base = Checkpoint(
        session_id=session_id,
        started_at=started_at,
        checkpoint_at=started_at + seconds,
        ended_at=None,
        end_reason=None,
        roles=ROLES,
        legs=tuple(leg(r) for r in ROLES),
        turns=TURNS,
        points=points("therapist", range(12)) + points("client", range(12), bad=(3, 8)),
        speech_from=(("therapist", 0), ("client", 0)),
        speech=(
            SpeechSpan("therapist", 0, 1.0, 9.5),
            SpeechSpan("client", 0, 10.0, 18.0),
            SpeechSpan("therapist", 1, 20.0, 38.0),
            SpeechSpan("client", 1, 39.0, 55.0),
        ),
        dropouts=(
            DropoutMark("client", 16.2, 0.5, True),
            DropoutMark("client", 41.0, 0.4, True),
        ),
    )
    return replace(base, **kw)
