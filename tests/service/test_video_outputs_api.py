"""heard.video through the real ingest endpoint, and the video additions (heard.video, the
report's video lane, the stats sample's video entry) against the API contract."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qualmon.core.heard import HeardTracker, parse_sample, sample_from_json
from qualmon.l10n.catalogs import english
from qualmon.reports.document import report_json
from qualmon.reports.store import ReportStore
from qualmon.service.keys import limiter_key
from qualmon.service.views import session_json
from qualmon.sessions.session import Session

from ..conftest import Service
from ..core.test_heard_video import video_doc
from ..fakes import FakeClock
from ..reportdata import checkpoint
from .test_contract import check
from .test_probe_ingest import post, sample


def with_video(i: int, **video: Any) -> dict[str, Any]:
    """The ingest suite's i-th sample plus an inbound video entry."""
    body = sample(i)
    body["stats"].append(video_doc(i, **video)["stats"][1])
    return body


async def test_heard_video_from_the_ingest_endpoint(service: Service) -> None:
    """Inbound video stats posted by a probe show as legs.<role>.heard.video; a freeze
    counter going down is a 400 naming it, and changes nothing."""
    service.app[limiter_key].min_interval_seconds = 0.0
    token = service.token("publish", "v1", "client")
    for i, freezes in enumerate((0, 2, 3)):
        body = with_video(i, freezeCount=freezes, totalFreezesDuration=0.25 * freezes)
        status, text, _ = await post(service, "v1", body, token=token)
        assert status == 204, text
        check("StatsSample", body)
    status, text, _ = await post(service, "v1", with_video(3, freezeCount=1), token=token)
    assert (status, text) == (400, "bad sample: freezeCount went down on stream 'IT01V'\n")
    doc = await service.session_json("v1")
    assert doc["legs"]["client"]["heard"]["video"] == {
        "freezes": 3,
        "freeze_seconds": 0.75,
        "frames_per_second": 29.5,
        "width": 640,
        "height": 480,
    }
    check("Session", doc)


def test_video_additions_match_the_contract(tmp_path: Path, clock: FakeClock) -> None:
    """A session whose probe reports video, and a report with a video lane."""
    session = Session("S1", wall_clock=clock.wall)
    tracker = HeardTracker()
    tracker.add(parse_sample(video_doc(0)), received_at=clock())
    session.slot("client").heard = tracker
    check("Session", session_json(session.snapshot(clock()), (), instance="qm-0", loc=english()))
    store = ReportStore(str(tmp_path / "reports.db"))
    base = checkpoint("S1")
    points = tuple(
        replace(p, video_fps_min=24.0, video_frozen=p.t_seconds == 10.0)
        if p.role == "client"
        else p
        for p in base.points
    )
    store.save(replace(base, points=points))
    report = store.load("S1")
    store.close()
    assert report is not None
    check("Report", report_json(report, english()))


@pytest.mark.parametrize("field", ["freezeCount", "framesPerSecond", "frameWidth"])
def test_the_schema_refuses_what_the_code_refuses(field: str) -> None:
    """A video field out of range fails both the contract and the parser."""
    body = with_video(0, **{field: -1})
    with pytest.raises(AssertionError):
        check("StatsSample", body)
    with pytest.raises(ValueError, match=field):
        sample_from_json(json.dumps(body))
