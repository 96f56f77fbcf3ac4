"""Session API and health probes over a real server."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import Service, wait_for

pytestmark = pytest.mark.realtime

LEG_FIELDS = {
    "state",
    "packets_received",
    "packets_lost",
    "loss_ratio",
    "recent_loss_ratio",
    "jitter_seconds",
    "rtt_seconds",
    "mos",
    "dropouts",
    "dropout_seconds",
    "reconnects",
}


async def test_session_json_shape(service: Service, publishers: Any) -> None:
    """Both roles appear with every documented field; timestamps are ISO 8601 UTC."""
    await publishers(service, "shape", "therapist")
    await publishers(service, "shape", "client")

    async def both_measured() -> dict[str, Any] | None:
        doc = await service.session_json("shape")
        legs = doc["legs"]
        ok = all(
            legs.get(r) and legs[r]["rtt_seconds"] is not None for r in ("therapist", "client")
        )
        return doc if ok else None

    doc = await wait_for(both_measured, timeout=10.0, what="RTT on both legs")
    assert doc["id"] == "shape"
    assert doc["state"] == "live"
    assert doc["started_at"].endswith("Z") and doc["ended_at"] is None
    for role in ("therapist", "client"):
        leg = doc["legs"][role]
        assert LEG_FIELDS <= set(leg)
        assert leg["state"] == "live"
        assert leg["packets_received"] > 0
        assert 1.0 <= leg["mos"] <= 4.5
        assert 0 < leg["rtt_seconds"] < 0.05  # loopback


async def test_list_sessions_is_admin_only(service: Service, publishers: Any) -> None:
    await publishers(service, "listed", "client")
    async with service.http.get(service.url + "/v1/sessions", headers=service.auth("admin")) as r:
        assert r.status == 200
        ids = [s["id"] for s in (await r.json())["sessions"]]
    assert ids == ["listed"]
    async with service.http.get(
        service.url + "/v1/sessions", headers=service.auth("watch", "listed")
    ) as r:
        assert r.status == 403
    async with service.http.get(service.url + "/v1/sessions") as r:
        assert r.status == 401


async def test_session_access_rules(service: Service, publishers: Any) -> None:
    """Watch token for the session → 200 (header or ?token=); another session's → 403;
    unknown session → 404; no/invalid token → 401; publish token → 403."""
    await publishers(service, "mine", "client")
    url = service.url + "/v1/sessions/mine"
    async with service.http.get(url, headers=service.auth("watch", "mine")) as r:
        assert r.status == 200
    async with service.http.get(url, params={"token": service.token("watch", "mine")}) as r:
        assert r.status == 200
    async with service.http.get(url, headers=service.auth("watch", "theirs")) as r:
        assert r.status == 403
    async with service.http.get(url, headers=service.auth("publish", "mine", "client")) as r:
        assert r.status == 403
    async with service.http.get(url, headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
    async with service.http.get(url) as r:
        assert r.status == 401
    async with service.http.get(
        service.url + "/v1/sessions/unknown", headers=service.auth("admin")
    ) as r:
        assert r.status == 404
    async with service.http.get(
        service.url + "/v1/sessions/unknown", headers=service.auth("watch", "unknown")
    ) as r:
        assert r.status == 404


async def test_ended_session_stays_readable(service: Service, publishers: Any) -> None:
    """After the last leg ends the session is `ended`, still served, with its totals."""
    publisher = await publishers(service, "gone", "client")
    await wait_for(
        lambda: (
            service.sessions.live_leg_count() == 1
            and service.sessions.legs_by_resource[
                publisher.resource_url.rsplit("/", 1)[1]
            ].stats.packets_received
            > 10
        ),
        what="media",
    )
    await publisher.stop()
    doc = await service.session_json("gone")
    assert doc["state"] == "ended"
    assert doc["legs"]["client"]["packets_received"] > 10


async def test_health_probes(service: Service) -> None:
    async with service.http.get(service.url + "/healthz") as r:
        assert r.status == 200
    async with service.http.get(service.url + "/readyz") as r:
        assert r.status == 200
    service.sessions.accepting = False
    async with service.http.get(service.url + "/readyz") as r:
        assert r.status == 503
    service.sessions.accepting = True
