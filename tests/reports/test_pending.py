"""Writes waiting for the store: merged per session, oldest first, bounded, drops counted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qualmon.reports.model import (
    Checkpoint,
    SessionReport,
    SpeechSpan,
    TimelinePoint,
    WarningRecord,
)
from qualmon.reports.pending import (
    PendingReports,
    merge_checkpoints,
    pending_bound,
)
from qualmon.reports.store import ReportStore

from ..reportdata import checkpoint, points

START = 1_790_000_000.0


def three_checkpoints() -> tuple[Checkpoint, Checkpoint, Checkpoint]:
    """A session's first checkpoint, a later one and its end, each incremental like the
    recorder's: new and changed points, speech from the first span not yet closed."""
    first = checkpoint()
    second = checkpoint(
        checkpoint_at=START + 70,
        legs=tuple(replace(leg, packets_received=5600) for leg in first.legs),
        points=(
            replace(points("client", range(11, 12))[0], mos=2.9),  # a point changed
            *points("client", range(12, 14)),
            *points("therapist", range(12, 14)),
        ),
        speech_from=(("therapist", 2), ("client", 1)),
        speech=(SpeechSpan("client", 1, 39.0, 62.0), SpeechSpan("client", 2, 64.0, 66.0)),
    )
    last = checkpoint(
        checkpoint_at=START + 80,
        ended_at=START + 80,
        end_reason="ended",
        legs=tuple(replace(leg, packets_received=6100, end_reason="closed") for leg in first.legs),
        points=(TimelinePoint("client", 65.0, 0.0, 0.002, 0.04, 4.3, True, True, 2),),
        speech_from=(("therapist", 2), ("client", 2)),
        speech=(SpeechSpan("client", 2, 64.0, 71.0), SpeechSpan("therapist", 2, 72.0, 79.0)),
        dropouts=(*first.dropouts, replace(first.dropouts[0], t_seconds=66.0, in_speech=None)),
    )
    return first, second, last


def stored(*writes: Checkpoint) -> SessionReport | None:
    store = ReportStore(":memory:")
    try:
        for cp in writes:
            store.save(cp)
        return store.load("S1")
    finally:
        store.close()


def test_merged_checkpoints_write_what_both_would() -> None:
    """Saving merge(a, b) stores exactly what saving a then b stores, from any start."""
    first, second, last = three_checkpoints()
    assert stored(first, merge_checkpoints(second, last)) == stored(first, second, last)
    assert stored(merge_checkpoints(merge_checkpoints(first, second), last)) == stored(
        first, second, last
    )
    report = stored(first, merge_checkpoints(second, last))
    assert report is not None and report.end_reason == "ended"
    client_speech = [(s.index, s.end_seconds) for s in report.speech if s.role == "client"]
    assert client_speech == [(0, 18.0), (1, 62.0), (2, 71.0)]


def warning(raised_at: float, cleared_at: float | None = None) -> WarningRecord:
    return WarningRecord("high_loss", "warning", "client", raised_at, cleared_at, 0.08, 0.043)


def test_one_entry_per_session_merging_in_order() -> None:
    """A session's checkpoints and warnings merge into one entry; a clearing replaces its
    raising; the entry keeps the order of its oldest write."""
    first, second, _ = three_checkpoints()
    pending = PendingReports(10)
    pending.add("S1", START, checkpoint=first)
    pending.add("S2", START, warning=warning(START + 1))
    pending.add("S1", START, warning=warning(START + 5))
    pending.add("S1", START, checkpoint=second)
    pending.add("S1", START, warning=warning(START + 5, START + 9))
    assert len(pending) == 2 and pending.counts() == {"checkpoint": 2, "final": 0}
    entry = pending.take()
    assert entry is not None and entry.key == ("S1", START) and entry.seq == 1
    assert entry.checkpoint == merge_checkpoints(first, second)
    assert list(entry.warnings.values()) == [warning(START + 5, START + 9)]
    pending.written()
    other = pending.take()
    assert other is not None and other.session_id == "S2" and other.checkpoint is None
    assert other.kind == "checkpoint"


def test_the_bound_drops_live_checkpoints_before_final_reports() -> None:
    """At the bound the oldest live session's checkpoint goes first; a final report only
    when nothing else is left, and a new checkpoint never pushes one out."""
    first, _, last = three_checkpoints()
    pending = PendingReports(3)
    assert pending.add("A", START, checkpoint=last, final=True) == []
    pending.add("B", START, checkpoint=first)
    pending.add("C", START, checkpoint=first)
    (dropped,) = pending.add("D", START, checkpoint=last, final=True)
    assert dropped.session_id == "B" and pending.dropped == {"checkpoint": 1, "final": 0}
    (dropped,) = pending.add("E", START, checkpoint=last, final=True)
    assert dropped.session_id == "C"
    (dropped,) = pending.add("F", START, checkpoint=first)  # only finals wait: it goes itself
    assert dropped.session_id == "F"
    (dropped,) = pending.add("G", START, checkpoint=last, final=True)
    assert dropped.session_id == "A"  # the oldest final
    assert pending.dropped == {"checkpoint": 3, "final": 1}
    assert pending.counts() == {"checkpoint": 0, "final": 3}
    pending.add("D", START, warning=warning(START + 1))  # merges: nothing more to drop
    assert pending.dropped == {"checkpoint": 3, "final": 1} and len(pending) == 3


def test_a_failed_write_goes_back_first_and_absorbs_what_came_meanwhile() -> None:
    """The entry being written is not lost when the write fails: it goes first again,
    merged (older first) with what its session queued during the attempt."""
    first, second, last = three_checkpoints()
    pending = PendingReports(10)
    pending.add("S1", START, checkpoint=first)
    pending.add("S2", START, checkpoint=first)
    taken = pending.take()
    assert taken is not None and pending.oldest_seq() == 1
    pending.add("S1", START, checkpoint=second)
    pending.add("S1", START, checkpoint=last, final=True)
    assert pending.has_session("S1") and len(pending) == 3
    pending.put_back()
    again = pending.take()
    assert again is not None and again.key == ("S1", START) and again.seq == 1
    assert again.final and again.checkpoint == merge_checkpoints(
        merge_checkpoints(first, second), last
    )
    assert pending.counts() == {"checkpoint": 1, "final": 1}
    with pytest.raises(RuntimeError):
        pending.take()
    pending.written()
    assert pending.oldest_seq() == 2 and not pending.has_session("S1")


def test_which_reports_wait() -> None:
    pending = PendingReports(10)
    assert pending.oldest_seq() is None and pending.take() is None
    pending.add("S1", START + 100, warning=warning(START + 101))
    assert pending.has_session("S1") and not pending.has_session("S2")
    assert pending.has_started_between(None, None)
    assert pending.has_started_between(START + 100, START + 101)
    assert not pending.has_started_between(START, START + 100)  # until is exclusive
    assert not pending.has_started_between(START + 101, None)


def test_the_bound_follows_the_leg_cap() -> None:
    """Twice the leg cap (a checkpoint per live session and as many finals), at least 200."""
    assert pending_bound(10) == 200
    assert pending_bound(100) == 200
    assert pending_bound(400) == 800
    with pytest.raises(ValueError):
        PendingReports(0)
