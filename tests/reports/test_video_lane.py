"""The report's video lane: per role and 5 s bucket, the lowest frame rate and whether the
picture froze; recorded from legs whose video reports constructed snapshots, stored in both
SQLite and PostgreSQL, served as JSON and drawn in the HTML timeline."""

from __future__ import annotations

from dataclasses import replace

from qualmon.l10n.catalogs import english
from qualmon.reports.async_store import AsyncReportStore
from qualmon.reports.document import report_json
from qualmon.reports.html import render_report_html
from qualmon.reports.model import video_band
from qualmon.reports.recorder import ReportRecorder
from qualmon.sessions.registry import SessionRegistry

from ..backends import Backend
from ..conftest import make_settings
from ..fakes import FakeClock, attach, give_video, send_together
from ..reportdata import checkpoint, points

PT = 1 / 64
PPS = 64


def with_video(cp_points: tuple, frozen: set[int], fps: dict[int, float]) -> tuple:  # type: ignore[type-arg]
    """The client's points given a picture: 30 fps unless `fps` says, frozen in `frozen`."""
    return tuple(
        replace(
            p,
            video_fps_min=fps.get(int(p.t_seconds // 5), 30.0),
            video_frozen=int(p.t_seconds // 5) in frozen,
        )
        if p.role == "client"
        else p
        for p in cp_points
    )


def test_video_lane_round_trips_and_renders(backend: Backend) -> None:
    """Stored and loaded as written (NULL for the audio-only therapist), in the report JSON,
    and drawn as a picture row in the client's lane only."""
    base = checkpoint()
    cp = replace(base, points=with_video(base.points, frozen={4}, fps={2: 12.0}))
    store = backend.open()
    try:
        store.save(cp)
        report = store.load("S1")
    finally:
        store.close()
    assert report is not None
    assert set(report.points) == set(cp.points)
    client = [p for p in report.points if p.role == "client"]
    assert [video_band(p) for p in client[:6]] == [
        "smooth",
        "smooth",
        "choppy",
        "smooth",
        "frozen",
        "smooth",
    ]
    therapist = [p for p in report.points if p.role == "therapist"]
    assert {(p.video_fps_min, p.video_frozen) for p in therapist} == {(None, None)}
    doc = report_json(report, english())
    assert doc["timeline"]["points"]["client"][4]["video_frozen"] is True
    assert doc["timeline"]["points"]["client"][2]["video_fps_min"] == 12.0
    assert doc["timeline"]["points"]["therapist"][0]["video_frozen"] is None
    assert "The client's picture froze at times (8% of the session)." in doc["summary"]
    html = render_report_html(report, english())
    assert html.count('<g class="video">') == 1
    client_lane = html.split('data-role="client"')[1]
    assert '<g class="video">' in client_lane
    assert client_lane.count('class="picture frozen"') == 1
    assert client_lane.count('class="picture choppy"') == 1
    assert "picture frozen; 30 fps at the lowest, froze" in client_lane


def test_reports_without_video_are_unchanged(backend: Backend) -> None:
    """An audio-only report has no video row and no picture sentence."""
    store = backend.open()
    try:
        store.save(checkpoint())
        report = store.load("S1")
    finally:
        store.close()
    assert report is not None
    assert '<g class="video">' not in render_report_html(report, english())
    assert "picture" not in report_json(report, english())["summary"]


async def test_recorder_writes_the_video_lane(backend: Backend, clock: FakeClock) -> None:
    """12 s of a client video leg at 30 fps, dropping to 12 fps in the second bucket and
    freezing once in the third; the audio-only therapist has no video in any bucket."""
    store = AsyncReportStore(backend.target)
    await store.open()
    try:
        recorder = ReportRecorder(store, clock=clock, wall_clock=clock.wall)
        registry = SessionRegistry(
            make_settings(), observers=[recorder], clock=clock, wall_clock=clock.wall
        )
        therapist_leg, therapist = await attach(
            registry, "s1", "therapist", clock, ptime_seconds=PT, first_seq=0
        )
        client_leg, client = await attach(
            registry, "s1", "client", clock, ptime_seconds=PT, first_seq=0
        )
        video = give_video(client_leg)
        video.set(frames_received=30)
        registry.tick()
        for second in range(12):
            if second == 6:
                video.set(frames_per_second=12.0)
            if second == 7:
                video.set(frames_per_second=30.0)
            if second == 11:
                video.freeze(0.4)
            send_together(clock, [therapist, client], PPS)
            registry.tick()
        await registry.delete_leg(therapist_leg.resource_id)
        await registry.delete_leg(client_leg.resource_id)
        await recorder.drain(timeout_seconds=5.0)
        report = await store.run(lambda s: s.load("s1"))
    finally:
        await store.close()
    assert report is not None
    lane = [
        (p.t_seconds, p.video_fps_min, p.video_frozen) for p in report.points if p.role == "client"
    ]
    assert lane == [(0.0, 30.0, False), (5.0, 12.0, False), (10.0, 30.0, True)]
    assert {p.video_frozen for p in report.points if p.role == "therapist"} == {None}


def test_points_helper_has_no_video() -> None:
    """The synthetic points other tests use stay audio-only (NULL video)."""
    assert {(p.video_fps_min, p.video_frozen) for p in points("client", range(3))} == {(None, None)}
