"""Janus attach and events over HTTP without a Janus: refusals are a 4xx or a 502 with one line
and leave nothing; the events endpoint checks its password and counts what it cannot use.
(tests/janus/ has the tests against a real Janus.)"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import replace
from typing import Any

import pytest

from qualmon.core.janus_events import VIDEOROOM
from qualmon.service.janus_attach import parse_janus_attach
from qualmon.service.keys import membership_key, rtp_ports_key
from qualmon.service.rtp_routes import AttachError

from ..conftest import Service, make_settings, run_service, wait_for
from ..test_cli import free_port

EVENTS_SECRET = "e" * 32
GOOD = {"room": 1234, "publisher_id": 5551, "role": "client", "room_secret": "s"}


def basic(password: str, user: str = "janus") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def nothing_left(service: Service) -> bool:
    return not service.sessions.sessions and not service.sessions.legs_by_resource


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**GOOD, "room": 0}, "room must be"),
        ({**GOOD, "room": True}, "room must be"),
        ({**GOOD, "publisher_id": "5551"}, "publisher_id must be"),
        ({k: v for k, v in GOOD.items() if k != "role"}, "role is required"),
        ({**GOOD, "room_secret": ""}, "room_secret must be"),
        ({**GOOD, "srtp": "yes"}, "srtp must be"),
        ({**GOOD, "x": 1}, "unknown field"),
    ],
)
def test_bad_bodies_say_why(body: dict[str, object], reason: str) -> None:
    with pytest.raises(AttachError, match=reason):
        parse_janus_attach(json.dumps(body).encode())


async def test_without_a_janus_url_attach_is_off(service: Service) -> None:
    async with service.http.post(
        service.url + "/v1/sessions/S1/janus", json=GOOD, headers=service.auth("admin")
    ) as r:
        assert r.status == 404 and "QUALMON_JANUS_URL" in await r.text()
    assert nothing_left(service)


async def test_janus_down_is_a_502_and_leaves_nothing() -> None:
    settings = make_settings(janus_url=f"http://127.0.0.1:{free_port()}/janus")
    async with run_service(settings) as service:
        url = service.url + "/v1/sessions/S1/janus"
        async with service.http.post(url, json=GOOD, headers=service.auth("admin")) as r:
            text = await r.text()
            assert r.status == 502 and text.startswith("Janus: Janus is unreachable"), text
            assert text.count("\n") == 1
        assert nothing_left(service)
        assert service.app[rtp_ports_key].in_use == 0
        async with service.http.post(
            url, data=b"{", headers={**service.auth("admin"), "Content-Type": "application/json"}
        ) as r:
            assert r.status == 400 and await r.text() == "body is not JSON\n"
        async with service.http.post(
            url, json=GOOD, headers=service.auth("publish", "S1", "client")
        ) as r:
            assert r.status == 403
        async with service.http.delete(url + "/nope", headers=service.auth("admin")) as r:
            assert r.status == 404
        assert nothing_left(service)


async def test_events_need_the_password() -> None:
    async with run_service(make_settings(janus_events_secret=EVENTS_SECRET)) as service:
        url = service.url + "/v1/integrations/janus/events"
        for headers in ({}, basic("wrong"), {"Authorization": "Basic ???"}, service.auth("admin")):
            async with service.http.post(url, data=b"[]", headers=headers) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Basic")
        async with service.http.post(url, data=b"[]", headers=basic(EVENTS_SECRET, "any")) as r:
            assert r.status == 204
    async with run_service(make_settings()) as service:  # no secret: nobody gets in
        async with service.http.post(
            service.url + "/v1/integrations/janus/events", data=b"[]", headers=basic("")
        ) as r:
            assert r.status == 401


async def test_a_flood_of_malformed_events_is_counted_never_a_5xx() -> None:
    rng = random.Random(7)
    shapes: list[object] = [
        None, 1, "x", [], {}, {"type": "32"}, {"type": 32}, {"type": 32, "event": []},
        {"type": 64, "session_id": 1, "handle_id": 2, "event": {"plugin": VIDEOROOM, "data": {}}},
        {"type": 32, "session_id": -1, "handle_id": 2, "event": {"media": "audio", "rtt": 5}},
    ]  # fmt: skip
    async with run_service(make_settings(janus_events_secret=EVENTS_SECRET)) as service:
        url = service.url + "/v1/integrations/janus/events"
        statuses = set()
        entries = 0
        for _ in range(200):
            batch = [rng.choice(shapes) for _ in range(rng.randint(1, 20))]
            entries += len(batch)
            async with service.http.post(url, json=batch, headers=basic(EVENTS_SECRET)) as r:
                statuses.add(r.status)
        for raw in (b"\xff\xfe", b"{", b"[" * 5000 + b"]" * 5000, b"1e999999"):
            async with service.http.post(url, data=raw, headers=basic(EVENTS_SECRET)) as r:
                statuses.add(r.status)
        assert statuses <= {204, 400}, statuses
        get = service.metrics.registry.get_sample_value
        malformed = get("qualmon_janus_events_total", {"outcome": "malformed"})
        ignored = get("qualmon_janus_events_total", {"outcome": "ignored"})
        assert malformed is not None and ignored is not None
        # Every entry is counted once; the 3 bodies that are not events count once each
        # (the fourth, 1e999999, is a JSON number: one malformed entry).
        assert malformed + ignored == entries + 4
        assert nothing_left(service)


async def test_a_cluster_shares_janus_events_with_every_instance(tmp_path: Any) -> None:
    """Janus posts to one address; the instance that accepts a post passes it on to the
    others (each needs the room events; media statistics matter where the attach lives),
    once: a passed-on post goes no further."""
    shared = str(tmp_path / "reports.db")
    event = {
        "type": 64,
        "session_id": 11,
        "handle_id": 21,
        "event": {
            "plugin": VIDEOROOM,
            "data": {"event": "joined", "room": 1234, "id": 5551, "display": "a"},
        },
    }
    settings = make_settings(db_path=shared, janus_events_secret=EVENTS_SECRET)
    ports = {"ja": free_port(), "jb": free_port()}
    a_settings, b_settings = (
        replace(settings, instance_id=i, advertise_url=f"http://127.0.0.1:{p}")
        for i, p in ports.items()
    )
    async with (
        run_service(a_settings, port=ports["ja"]) as a,
        run_service(b_settings, port=ports["jb"]) as b,
    ):
        for service in (a, b):
            await service.app[membership_key].beat()
        await a.app[membership_key].beat()  # a now knows b

        def used(service: Service) -> float:
            get = service.metrics.registry.get_sample_value
            return get("qualmon_janus_events_total", {"outcome": "used"}) or 0.0

        url = a.url + "/v1/integrations/janus/events"
        async with a.http.post(url, json=[event], headers=basic(EVENTS_SECRET)) as r:
            assert r.status == 204
        await wait_for(lambda: used(b) == 1.0, what="the event at the other instance")
        assert used(a) == 1.0
        relayed = a.metrics.registry.get_sample_value(
            "qualmon_relay_requests_total", {"outcome": "relayed"}
        )
        assert relayed == 1.0
        # b got it passed on: it passes nothing further.
        assert not b.metrics.registry.get_sample_value(
            "qualmon_relay_requests_total", {"outcome": "relayed"}
        )
