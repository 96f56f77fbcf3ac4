"""The API contract: a valid OpenAPI 3.1 document of every route, served with its page, and
the JSON the code makes (sessions, stream messages, reports) matching its schemas."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

import qualmon
from qualmon.config import Settings
from qualmon.core.heard import HeardTracker, sample_from_json
from qualmon.core.warnings import WarningEvent
from qualmon.l10n.catalogs import english, load_localizer
from qualmon.media.offer import validate_offer
from qualmon.reports.document import report_json
from qualmon.reports.model import WarningRecord
from qualmon.reports.store import ReportStore
from qualmon.service.app import create_app
from qualmon.service.openapi import build_document
from qualmon.service.openapi.ingest import EXAMPLE_OFFER, EXAMPLE_SAMPLE
from qualmon.service.openapi.page import DOCS_CSP, render_docs
from qualmon.service.views import session_json, stream_message
from qualmon.sessions.session import Session
from qualmon.warnings.runtime import Pulse, Restart

from ..conftest import Service, make_settings, run_service
from ..fakes import FakeClock, join_session, probe_sample
from ..reportdata import checkpoint
from .test_probe_ingest import sample

DOCUMENT = build_document(make_settings())


def check(schema_name: str, instance: object) -> None:
    """Validate `instance` against a named schema of the document (refs resolved in it)."""
    root = {**DOCUMENT, "$ref": f"#/components/schemas/{schema_name}"}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, "\n".join(errors)


def test_the_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator's 3.1 validator accepts it; the version is the package's."""
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)
    assert DOCUMENT["openapi"].startswith("3.1.")
    assert DOCUMENT["info"]["version"] == qualmon.__version__


def test_every_route_is_documented_and_nothing_else(settings: Settings) -> None:
    """The app's routes (HEAD aside, which aiohttp adds to every GET) are the paths and
    methods of the document."""
    app = create_app(settings)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}
    assert routes == documented


def test_every_operation_documents_its_errors() -> None:
    """Each operation says what a bug answers; one with a token, what 401 and 403 are."""
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if operation["security"]:
                assert {"401", "403"} <= statuses, (method, path)
            for status, answer in operation["responses"].items():
                if status.startswith("4") and "content" in answer:
                    assert list(answer["content"]) == ["text/plain"], (method, path, status)


async def test_the_document_and_its_page_are_served(service: Service) -> None:
    """/openapi.json is the document; /docs renders it, self-contained under a strict CSP."""
    async with service.http.get(service.url + "/openapi.json") as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert await r.json() == json.loads(json.dumps(build_document(make_settings())))
    async with service.http.get(service.url + "/docs") as r:
        assert r.status == 200 and r.content_type == "text/html"
        assert r.headers["Content-Security-Policy"] == DOCS_CSP
        page = await r.text()
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert f'id="{operation["operationId"]}"' in page, (method, path)
    assert "<script" not in page
    assert not re.findall(r'(?:src|href)="(?!#|/openapi\.json")', page)


def test_the_page_escapes_what_it_shows() -> None:
    """Markup in any text of a document is shown as text, never interpreted."""
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"'
    doc = copy.deepcopy(DOCUMENT)
    doc["info"]["description"] = evil
    operation = doc["paths"]["/v1/reports"]["get"]
    operation["summary"] = operation["description"] = evil
    operation["parameters"][0]["description"] = evil
    operation["parameters"][0]["schema"] = {"enum": [evil], "pattern": evil}
    doc["paths"][evil] = doc["paths"]["/healthz"]
    doc["components"]["schemas"]["Warning"]["properties"]["kind"]["description"] = evil
    page = render_docs(doc)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_examples_are_what_the_code_accepts() -> None:
    """The document's offer passes the offer check; its sample and the suite's samples fit
    the stats schema and are accepted."""
    validate_offer(EXAMPLE_OFFER)
    for body in (EXAMPLE_SAMPLE, sample(0), sample(3, audible_per_interval=480)):
        check("StatsSample", body)
        sample_from_json(json.dumps(body))


def _warning(kind: str, role: str | None, event: str = "raised") -> WarningEvent:
    return WarningEvent(
        type=event,  # type: ignore[arg-type]
        kind=kind,
        severity="warning",
        role=role,
        value=0.08,
        threshold=0.043,
        at=1_764_000_000.25,
        therapist_text="The client's audio is breaking up.",
        sre_text="client loss 8.0 % over 5 s",
    )


@pytest.fixture
def session(settings: Settings, clock: FakeClock) -> Session:
    """A live session: the therapist's leg with packets, loss and speech, the client known
    from a probe alone."""
    live = Session("S1", wall_clock=clock.wall)
    _, therapist = join_session(live, "therapist", settings, clock)
    therapist.send(100, lose={1020, 1021})
    therapist.speak(0.0, 2.0, True)
    therapist.rtt(0.05)
    tracker = HeardTracker()
    tracker.add(probe_sample(0), received_at=clock())
    clock.advance(2.0)
    tracker.add(probe_sample(1, concealed_per_interval=960), received_at=clock())
    live.slot("client").heard = tracker
    return live


def test_session_json_matches_the_contract(session: Session, clock: FakeClock) -> None:
    """GET /v1/sessions/{id} (with warnings) and the listing's entries (without)."""
    snapshot = session.snapshot(clock())
    assert set(snapshot.roles) == {"therapist", "client"}
    warnings = (_warning("high_loss", "client"), _warning("talk_over_delay", None))
    check("Session", session_json(snapshot, warnings, instance="qm-0.qualmon_1", loc=english()))
    check("SessionListed", session_json(snapshot, instance="host-4242", loc=english()))
    with pytest.raises(AssertionError, match="does not match"):
        check("SessionListed", session_json(snapshot, instance="not an id", loc=english()))


def test_stream_messages_match_the_contract(session: Session, clock: FakeClock) -> None:
    """What SSE and WebSocket send: raised, cleared, snapshot, heartbeat, restart."""
    snapshot = session.snapshot(clock())
    messages = [
        stream_message(_warning("high_loss", "client"), load_localizer("de")),
        stream_message(_warning("high_loss", "client", "cleared"), english()),
        stream_message(
            Pulse(snapshot, (_warning("talk_over_delay", None),), 1_764_000_000.0),
            load_localizer("pt_BR"),
        ),
        stream_message(Restart(retry_after_seconds=5), english()),
        ("heartbeat", {}),
    ]
    messages[2][1]["talk_balance_enabled"] = False  # added by the stream, as events.py does
    for event, data in messages:
        check("StreamMessage", {"event": event, "data": data})
        # The same message as an SSE event as OpenAPI 3.1 tools read one (schemathesis
        # validates each event of a text/event-stream answer against its `schema`).
        _check_sse_event({"event": event, "data": json.dumps(data)})


def _check_sse_event(event: dict[str, str]) -> None:
    stream = DOCUMENT["paths"]["/v1/sessions/{session_id}/events"]["get"]["responses"]["200"]
    schema = stream["content"]["text/event-stream"]["schema"]
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(event)]
    assert not errors, errors
    assert json.loads(event["data"]) is not None


def test_reports_match_the_contract(tmp_path: Path, session: Session, clock: FakeClock) -> None:
    """A stored, ended report with a warning; one begun by a warning before any checkpoint
    (no turns yet); a live one with its session JSON."""
    store = ReportStore(str(tmp_path / "reports.db"))
    started = 1_764_000_000.0
    store.save(checkpoint("ended", started_at=started, ended_at=started + 60, end_reason="ended"))
    record = WarningRecord("high_loss", "warning", "client", started + 15, started + 21, 0.08, 0.05)
    store.record_warning("ended", started, record)
    store.record_warning("early", started, record)
    store.save(checkpoint("live", started_at=started))
    docs: dict[str, dict[str, Any]] = {}
    for session_id in ("ended", "early", "live"):
        report = store.load(session_id)
        assert report is not None
        docs[session_id] = report_json(report, english())
    store.close()
    docs["live"]["live"] = session_json(session.snapshot(clock()), instance="qm-1", loc=english())
    assert docs["early"]["turns"] == {}
    for doc in docs.values():
        check("Report", doc)


async def test_listed_reports_match_the_contract(tmp_path: Path) -> None:
    """GET /v1/reports as the route writes its rows."""
    db = tmp_path / "reports.db"
    store = ReportStore(str(db))
    store.save(checkpoint("a", started_at=1_764_000_000.0, ended_at=1_764_000_060.0))
    store.save(checkpoint("b", started_at=1_764_000_100.0))
    store.close()
    async with run_service(make_settings(db_path=str(db), retention_days=3650)) as service:
        async with service.http.get(
            service.url + "/v1/reports", headers=service.auth("admin")
        ) as r:
            assert r.status == 200
            listing = await r.json()
    assert [row["id"] for row in listing["reports"]] == ["b", "a"]
    check("ReportList", listing)


def test_a_video_leg_matches_the_contract(settings: Settings, clock: FakeClock) -> None:
    """legs.<role>.video: a measured video leg's every field, and null before a keyframe's
    size is known; an audio-only leg's null is covered above."""
    live = Session("S2", wall_clock=clock.wall)
    leg, source = join_session(live, "client", settings, clock)
    leg.use_video_codec("vp8")
    source.send(10)
    for number in range(20):
        clock.advance(1 / 30)
        source.video_frame(number, lose=(0,) if number == 7 else ())
    doc = session_json(live.snapshot(clock()), instance="qm-0", loc=english())
    video = doc["legs"]["client"]["video"]
    assert video["codec"] == "vp8" and video["frames_received"] > 0
    check("SessionListed", doc)
    with pytest.raises(AssertionError, match="is not one of"):
        check("Video", {**video, "codec": "vp9"})
