"""Unit tests of the report recorder: fake legs on a fake clock, a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qualmon.config import Settings
from qualmon.core.speech import SpeechParams
from qualmon.reports.async_store import AsyncReportStore
from qualmon.reports.model import SessionReport
from qualmon.reports.recorder import ReportObserver, ReportRecorder
from qualmon.sessions.registry import SessionRegistry

from ..fakes import WALL_START, FakeClock, FakeSource, attach, send_together

PT = 1 / 64
"Packet time: 1/64 s keeps every arrival exactly representable, so samples fall on whole seconds."
PPS = 64
OVERHANG = SpeechParams().vad_overhang_seconds
"Segments end this long before their last speech frame (webrtcvad's own hangover)."


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncReportStore]:
    opened = AsyncReportStore(str(tmp_path / "reports.db"))
    await opened.open()
    yield opened
    await opened.close()


class Reports(ReportObserver):
    def __init__(self) -> None:
        self.saved: list[tuple[float, float]] = []

    def on_session_report(self, duration_seconds: float, degraded_ratio: float) -> None:
        self.saved.append((duration_seconds, degraded_ratio))


async def load(store: AsyncReportStore, session_id: str = "s1") -> SessionReport:
    report = await store.run(lambda s: s.load(session_id))
    assert report is not None
    return report


async def test_checkpoints_first_at_once_then_every_checkpoint_seconds(
    settings: Settings, clock: FakeClock, store: AsyncReportStore
) -> None:
    """A session's first sample is saved at once, then every 10 s; a role's first media is
    saved at once too, and restarts the 10 s."""
    recorder = ReportRecorder(store, checkpoint_seconds=10.0, clock=clock, wall_clock=clock.wall)
    registry = SessionRegistry(settings, clock=clock, wall_clock=clock.wall)
    _, source = await attach(registry, "s1", "client", clock, ptime_seconds=PT)
    session = registry.sessions["s1"]

    async def sample_at(seconds: float) -> float:
        """Sample `seconds` after the start; the wall time of the newest stored checkpoint."""
        clock.advance_to(start + seconds)
        recorder.on_session_sample(session, clock())
        await recorder.flush()
        return (await load(store)).checkpoint_at

    start = clock()
    saved = [await sample_at(s) for s in range(12)]
    assert saved == [WALL_START] * 10 + [WALL_START + 10.0] * 2
    report = await load(store)
    assert (report.started_at, report.ended_at, report.end_reason) == (WALL_START, None, None)
    assert report.legs[0].packets_received == 0
    source.send(PPS // 2)  # the client's first packets, at 12.5 s
    assert await sample_at(13.0) == WALL_START + 13.0
    assert [await sample_at(s) for s in (14.0, 22.0, 23.0)] == [WALL_START + 13.0] * 2 + [
        WALL_START + 23.0
    ]
    assert (await load(store)).legs[0].packets_received == PPS // 2
    await registry.close_all()


async def test_the_final_report(
    settings: Settings, clock: FakeClock, store: AsyncReportStore
) -> None:
    """Two roles for 12 s, each losing 10 packets once (the therapist while speaking, the
    client in silence): the final report holds exactly what the sources sent."""
    reports = Reports()
    recorder = ReportRecorder(
        store, observer=reports, checkpoint_seconds=10.0, clock=clock, wall_clock=clock.wall
    )
    registry = SessionRegistry(settings, observers=[recorder], clock=clock, wall_clock=clock.wall)
    start = clock()
    therapist_leg, therapist = await attach(
        registry, "s1", "therapist", clock, ptime_seconds=PT, first_seq=0
    )
    client_leg, client = await attach(
        registry, "s1", "client", clock, ptime_seconds=PT, first_seq=0
    )
    registry.tick()
    # Packet k arrives at start + (k + 1)/64 and holds the audio of that 1/64 s.
    lose: dict[FakeSource, set[int]] = {
        therapist: set(range(100, 110)),  # 1.5625 s after the start, while speaking
        client: set(range(660, 670)),  # 10.3125 s, in silence
    }
    for second in range(12):
        speech = {therapist: second in (1, 2), client: second in (6, 7)}
        send_together(clock, [therapist, client], PPS, lose=lose, speech=speech)
        registry.tick()
    assert clock() == start + 12.0
    await registry.delete_leg(therapist_leg.resource_id)
    await registry.delete_leg(client_leg.resource_id)
    await recorder.drain(timeout_seconds=5.0)
    report = await load(store)

    assert (report.started_at, report.ended_at, report.end_reason) == (
        WALL_START,
        WALL_START + 12.0,
        "ended",
    )
    assert reports.saved == [(12.0, 0.0)]
    assert report.roles == ("therapist", "client")
    for role, speaking in (("therapist", 2.0 - 10 * PT), ("client", 2.0)):
        leg = report.leg(role)
        assert leg is not None
        assert (leg.packets_received, leg.packets_lost) == (12 * PPS - 10, 10)
        assert leg.loss_ratio == 10 / (12 * PPS)
        assert (leg.dropouts, leg.dropout_seconds) == (1, 10 * PT)
        assert leg.end_reason == "closed"
        # What was spoken and arrived, less the VAD's overhang at the segment's end.
        assert leg.speech_seconds == pytest.approx(speaking - OVERHANG)
        assert leg.jitter_p50_seconds == pytest.approx(0.0, abs=1e-9)
    therapist_totals, client_totals = report.leg("therapist"), report.leg("client")
    assert therapist_totals is not None and client_totals is not None
    assert (therapist_totals.dropouts_in_speech, therapist_totals.dropout_in_speech_seconds) == (
        1,
        10 * PT,
    )
    assert (client_totals.dropouts_in_speech, client_totals.dropout_in_speech_seconds) == (0, 0.0)

    timeline = {
        role: [
            (p.t_seconds, p.speaking, p.stalled, p.dropouts)
            for p in report.points
            if p.role == role
        ]
        for role in report.roles
    }
    assert timeline == {
        "therapist": [(0.0, True, False, 1), (5.0, False, False, 1), (10.0, False, False, 1)],
        "client": [(0.0, False, False, 0), (5.0, True, False, 0), (10.0, False, False, 1)],
    }
    marks = [(m.role, m.t_seconds, m.duration_seconds, m.in_speech) for m in report.dropouts]
    assert marks == [
        ("therapist", 100 * PT, 10 * PT, True),  # the last packet before the gap: k = 99
        ("client", 660 * PT, 10 * PT, False),
    ]
    spans: dict[str, list[tuple[float, float]]] = {}
    for span in report.speech:
        spans.setdefault(span.role, []).append((span.start_seconds, span.end_seconds))
    assert spans == {
        "therapist": [(65 * PT, pytest.approx(193 * PT - OVERHANG))],
        "client": [(385 * PT, pytest.approx(513 * PT - OVERHANG))],
    }
    assert report.turns["turn_count"] == {"therapist": 1, "client": 1}


async def test_a_session_whose_legs_were_lost(
    settings: Settings, clock: FakeClock, store: AsyncReportStore
) -> None:
    """Both legs silent until lost: every bucket from the stall on is marked stalled, and the
    report ends as lost."""
    reports = Reports()
    recorder = ReportRecorder(store, observer=reports, clock=clock, wall_clock=clock.wall)
    registry = SessionRegistry(settings, observers=[recorder], clock=clock, wall_clock=clock.wall)
    start = clock()
    legs = [
        await attach(registry, "s1", role, clock, ptime_seconds=PT, first_seq=0)
        for role in ("therapist", "client")
    ]
    registry.tick()
    for _ in range(2):
        send_together(clock, [source for _, source in legs], PPS)
        registry.tick()
    while registry.sessions["s1"].live:
        clock.advance(1.0)
        registry.tick()
    assert clock() == start + 2.0 + settings.lost_after_seconds
    await recorder.drain(timeout_seconds=5.0)
    report = await load(store)
    assert report.end_reason == "lost"
    assert [leg.end_reason for leg in report.legs] == ["lost", "lost"]
    assert reports.saved == [(22.0, 0.0)]
    for role in ("therapist", "client"):
        points = [(p.t_seconds, p.stalled) for p in report.points if p.role == role]
        assert points == [(0.0, True), (5.0, True), (10.0, True), (15.0, True), (20.0, True)]
    for leg, _ in legs:
        assert leg.source is None


async def test_a_dropout_mark_is_unknown_until_the_audio_after_it_is_classified(
    settings: Settings, clock: FakeClock, store: AsyncReportStore
) -> None:
    """Stored with in_speech None while too little audio follows the gap, then settled."""
    recorder = ReportRecorder(store, clock=clock, wall_clock=clock.wall)
    registry = SessionRegistry(settings, observers=[recorder], clock=clock, wall_clock=clock.wall)
    _, source = await attach(registry, "s1", "client", clock, ptime_seconds=PT, first_seq=0)
    session = registry.sessions["s1"]
    source.send(PPS, speech=True)
    source.send(15, lose=set(range(64, 74)), speech=True)  # 5/64 s of audio after the gap
    await recorder.checkpoint_now(session, min_age_seconds=0.0)
    marks = [(m.t_seconds, m.in_speech) for m in (await load(store)).dropouts]
    assert marks == [(64 * PT, None)]
    source.send(PPS // 2, speech=True)
    await recorder.checkpoint_now(session, min_age_seconds=0.0)
    marks = [(m.t_seconds, m.in_speech) for m in (await load(store)).dropouts]
    assert marks == [(64 * PT, True)]
    await registry.close_all()
    await recorder.drain(timeout_seconds=5.0)
