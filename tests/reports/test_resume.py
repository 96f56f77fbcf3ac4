"""Which stored report a session that starts here continues."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qualmon.reports.model import DropoutMark, LegAggregate, SessionReport, SpeechSpan
from qualmon.reports.resume import resumed_from

NOW = 1_800_000_000.0
LEG = LegAggregate(
    role="client",
    packets_received=500,
    packets_lost=5,
    loss_ratio=0.01,
    jitter_p50_seconds=0.002,
    jitter_p95_seconds=0.004,
    rtt_p50_seconds=None,
    rtt_p95_seconds=None,
    mos_min=4.1,
    mos_mean=4.3,
    dropouts=1,
    dropout_seconds=0.3,
    dropouts_in_speech=0,
    dropout_in_speech_seconds=0.0,
    speech_seconds=2.5,
    reconnects=1,
    end_reason=None,
)
REPORT = SessionReport(
    session_id="s1",
    started_at=NOW - 100.0,
    checkpoint_at=NOW - 8.0,
    ended_at=None,
    end_reason=None,
    roles=("client",),
    legs=(LEG,),
    turns={},
    points=(),
    speech=(SpeechSpan("client", 1, 9.0, 10.5), SpeechSpan("client", 0, 2.0, 3.0)),
    dropouts=(DropoutMark("client", 20.0, 0.3, False),),
    warnings=(),
)


@pytest.mark.parametrize("end_reason", [None, "interrupted", "shutdown"])
def test_a_cut_off_report_with_a_recent_checkpoint_continues(end_reason: str | None) -> None:
    resumed = resumed_from(replace(REPORT, end_reason=end_reason), now=NOW, window_seconds=30.0)
    assert resumed is not None and resumed.started_at == REPORT.started_at
    client = resumed.role("client")
    assert client is not None
    assert client.speech == ((2.0, 3.0), (9.0, 10.5))  # in index order
    assert client.totals.packets_expected == 505 and client.reconnects == 1
    assert [(d.t_seconds, d.in_speech) for d in client.dropouts] == [(20.0, False)]


@pytest.mark.parametrize("end_reason", ["ended", "lost"])
def test_a_session_that_ended_is_over(end_reason: str) -> None:
    assert resumed_from(replace(REPORT, end_reason=end_reason), now=NOW, window_seconds=30) is None


def test_a_stale_checkpoint_starts_a_new_report() -> None:
    assert resumed_from(REPORT, now=NOW, window_seconds=7.9) is None
    assert resumed_from(REPORT, now=NOW, window_seconds=8.1) is not None
