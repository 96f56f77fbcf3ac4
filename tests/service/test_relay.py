"""Relaying between real instances: a request for a session owned elsewhere is answered by
its owner, streams included; an unreachable owner is a 503, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from qualmon.config import Settings
from qualmon.service.app import create_app
from qualmon.service.keys import settings_key, warnings_key
from qualmon.service.relay import RELAYED_ROUTES
from qualmon.service.relay_client import RELAYED_HEADER

from ..conftest import wait_for
from .relay_cluster import Instance, cluster, relay_count
from .serving import free_port
from .test_events import read_sse
from .test_probe_ingest import sample, stable

OWNED = {"s1": "b", "s2": "b", "gone": "dead"}


@pytest.fixture
async def trio(settings: Settings) -> AsyncIterator[dict[str, Instance]]:
    """Instances a, b, c; b owns s1 and s2; `dead` owns `gone` and never answers."""
    async with cluster(settings, ["a", "b", "c"], dict(OWNED)) as instances:
        instances["a"].owners.urls["dead"] = f"http://127.0.0.1:{free_port()}"
        yield instances


async def post_sample(via: Instance, session: str, i: int, role: str = "client", **kw: Any) -> int:
    async with via.http.post(
        f"{via.url}/v1/sessions/{session}/stats",
        json=sample(i, **kw),
        headers=via.auth("publish", session, role),
    ) as r:
        await r.read()
        return r.status


async def test_stats_posted_anywhere_land_on_the_owner(trio: dict[str, Instance]) -> None:
    """A sample posted to a and one to c both reach b, the owner; a asked with claim=True;
    the session JSON is the same from every instance; the relay is counted."""
    a, b, c = trio["a"], trio["b"], trio["c"]
    assert await post_sample(a, "s1", 0) == 204
    assert await post_sample(c, "s1", 1) == 204
    assert "s1" in b.sessions.sessions
    assert "s1" not in a.sessions.sessions and "s1" not in c.sessions.sessions
    assert ("s1", True) in a.owners.asked and ("s1", True) in c.owners.asked
    docs = [stable(await i.session_json("s1")) for i in (a, b, c)]
    assert docs[0]["legs"]["client"]["heard"]["samples"] == 2
    assert docs[0] == docs[1] == docs[2]
    assert ("s1", False) in a.owners.asked  # reads never claim
    assert relay_count(a, "relayed") == 2 and relay_count(c, "relayed") == 2
    assert relay_count(b, "relayed") == 0  # the owner answered everything itself


@pytest.mark.slow
async def test_an_event_raised_on_the_owner_streams_through_another_instance(
    trio: dict[str, Instance],
) -> None:
    """SSE opened on a: the snapshot, then the owner's audible_concealment warning arrive
    while the stream is open (passed on as it comes, not when the stream ends)."""
    a = trio["a"]
    assert await post_sample(a, "s2", 0, "therapist") == 204
    events: list[tuple[str, dict[str, Any], float]] = []
    token = a.token("watch", "s2")
    async with a.http.get(f"{a.url}/v1/sessions/s2/events", params={"token": token}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_sse(r, events))
        try:
            await wait_for(lambda: events, timeout=10.0, what="the first snapshot via a")
            assert events[0][0] == "snapshot" and events[0][1]["id"] == "s2"
            for i in (1, 2):
                assert (
                    await post_sample(trio["c"], "s2", i, "therapist", audible_per_interval=4800)
                    == 204
                )
            raised = await wait_for(
                lambda: [d for e, d, _ in events if e == "raised"],
                timeout=15.0,
                what="audible_concealment raised, via a",
            )
            assert raised[0]["kind"] == "audible_concealment" and raised[0]["role"] == "therapist"
            assert not reader.done()  # still streaming
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    # The owner lets go of the subscriber once the relayed client is gone.
    runtime_subscribers = trio["b"].app[warnings_key].by_session["s2"].subscribers
    await wait_for(lambda: not runtime_subscribers, timeout=10.0, what="owner stream closed")


async def test_a_websocket_through_another_instance_closes_both_ways(
    trio: dict[str, Instance],
) -> None:
    """WS on c for b's session: messages come through; the client's close reaches the owner,
    and the owner's close (shutdown restart) reaches the client."""
    a, b, c = trio["a"], trio["b"], trio["c"]
    assert await post_sample(a, "s1", 0) == 204
    subscribers = b.app[warnings_key].by_session
    headers = {"Authorization": "Bearer " + c.token("watch", "s1")}
    async with c.http.ws_connect(f"{c.url}/v1/sessions/s1/ws", headers=headers) as socket:
        first = await socket.receive_json(timeout=10.0)
        assert first["event"] == "snapshot" and first["data"]["id"] == "s1"
        await wait_for(lambda: subscribers["s1"].subscribers, what="owner has the subscriber")
    await wait_for(lambda: not subscribers["s1"].subscribers, timeout=10.0, what="closed on b")

    async with a.http.ws_connect(f"{a.url}/v1/sessions/s1/ws", headers=headers) as socket:
        assert (await socket.receive_json(timeout=10.0))["event"] == "snapshot"
        b.app[warnings_key].close_streams(restart=True)
        kinds = []
        while True:
            msg = await socket.receive(timeout=10.0)
            if msg.type != WSMsgType.TEXT:
                break
            kinds.append(json.loads(msg.data)["event"])
        assert "restart" in kinds
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert relay_count(a, "relayed") >= 2


async def test_refusals_of_the_owner_come_back_unchanged(trio: dict[str, Instance]) -> None:
    """A WebSocket for an unknown session, a report of an unknown one: the owner's 404."""
    a = trio["a"]
    trio["a"].owners.owner_by_session["nobody"] = "b"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await a.http.ws_connect(f"{a.url}/v1/sessions/nobody/ws", headers=a.auth("admin"))
    assert refused.value.status == 404
    async with a.http.get(f"{a.url}/v1/sessions/nobody", headers=a.auth("admin")) as r:
        assert r.status == 404 and await r.text() == "unknown session\n"


async def test_an_unreachable_owner_is_503_with_retry_after(
    trio: dict[str, Instance], caplog: pytest.LogCaptureFixture
) -> None:
    """Stats, session JSON, SSE and WS for a session whose owner is down: 503, Retry-After,
    one line of text, CORS where the route has it; counted; logged without token or address.
    Its report comes from the shared store."""
    a = trio["a"]
    caplog.set_level(logging.INFO)
    token = a.token("publish", "gone", "client")
    async with a.http.post(
        f"{a.url}/v1/sessions/gone/stats",
        json=sample(0),
        headers={"Authorization": "Bearer " + token},
    ) as r:
        assert r.status == 503
        assert r.headers["Retry-After"] == str(a.app[settings_key].retry_after_seconds)
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        text = await r.text()
        assert text.count("\n") == 1 and "cannot be reached" in text
    for path in ("", "/events"):
        async with a.http.get(
            f"{a.url}/v1/sessions/gone{path}", params={"token": a.token("admin")}
        ) as r:
            assert r.status == 503, path
    # A report is answered from the shared store instead (its last checkpoint; none here).
    async with a.http.get(
        f"{a.url}/v1/sessions/gone/report", params={"token": a.token("admin")}
    ) as r:
        assert r.status == 404, await r.text()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await a.http.ws_connect(f"{a.url}/v1/sessions/gone/ws", headers=a.auth("admin"))
    assert refused.value.status == 503
    assert relay_count(a, "unreachable") == 5
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unreachable" in logged and "dead" in logged
    assert token not in logged and "127.0.0.1" not in logged


async def test_a_relayed_request_is_never_relayed_again(trio: dict[str, Instance]) -> None:
    """With Qualmon-Relayed the receiving instance answers itself and asks nobody."""
    a = trio["a"]
    headers = {**a.auth("admin"), RELAYED_HEADER: "b"}
    async with a.http.get(f"{a.url}/v1/sessions/s1", headers=headers) as r:
        assert r.status == 404  # not here, and not looked for elsewhere
    assert a.owners.asked == [] and relay_count(a, "relayed") == 0


async def test_bad_tokens_are_answered_locally(trio: dict[str, Instance]) -> None:
    """No token, a bad one, one for another session: the usual 401/403 from the instance
    asked, without asking who owns the session."""
    a = trio["a"]
    url = f"{a.url}/v1/sessions/s1"
    async with a.http.get(url) as r:
        assert r.status == 401
    async with a.http.get(url, headers={"Authorization": "Bearer nonsense"}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="qualmon"'
    async with a.http.get(url, headers=a.auth("watch", "s2")) as r:
        assert r.status == 403
    async with a.http.post(url + "/stats", json=sample(0), headers=a.auth("watch", "s1")) as r:
        assert r.status == 403  # a watcher claims nothing
    async with a.http.post(
        f"{a.url}/whip", data="v=0", headers={"Content-Type": "application/sdp"}
    ) as r:
        assert r.status == 401
    async with a.http.delete(f"{a.url}/whip/abc", headers={"Authorization": "Bearer x.y.z"}) as r:
        assert r.status == 401
    assert a.owners.asked == [] and relay_count(a, "relayed") == 0


async def test_the_session_list_covers_the_cluster(trio: dict[str, Instance]) -> None:
    """Without scope: every instance's sessions, `partial` naming the dead one; with
    scope=local: this instance's only, as before clusters."""
    a, b, c = trio["a"], trio["b"], trio["c"]
    c.owners.owner_by_session["s3"] = "c"
    assert await post_sample(a, "s1", 0) == 204
    assert await post_sample(a, "s3", 0) == 204
    assert await post_sample(a, "mine", 0) == 204  # nobody owns it: handled (and kept) on a
    async with a.http.get(f"{a.url}/v1/sessions", headers=a.auth("admin")) as r:
        assert r.status == 200
        doc = await r.json()
    assert sorted(s["id"] for s in doc["sessions"]) == ["mine", "s1", "s3"]
    assert doc["partial"] == ["dead"]
    async with b.http.get(
        f"{b.url}/v1/sessions", params={"scope": "local", "token": b.token("admin")}
    ) as r:
        assert r.status == 200
        assert [s["id"] for s in (await r.json())["sessions"]] == ["s1"]
        assert "partial" not in await r.json()
    async with a.http.get(f"{a.url}/v1/sessions?scope=everywhere", headers=a.auth("admin")) as r:
        assert r.status == 400
    async with a.http.get(f"{a.url}/v1/sessions", headers=a.auth("watch", "s1")) as r:
        assert r.status == 403


async def test_session_pages_walk_the_cluster(trio: dict[str, Instance]) -> None:
    """Pages of 4 through any instance: every session of every instance once, in id order,
    `partial` naming the dead one on each page; the instances were asked for pages too."""
    a, b, c = trio["a"], trio["b"], trio["c"]
    owned = {f"p{i:02}": "abc"[i % 3] for i in range(14)}
    a.owners.owner_by_session.update(owned)
    for session in owned:
        assert await post_sample(a, session, 0) == 204
    assert [len(i.sessions.sessions) for i in (a, b, c)] == [5, 5, 4]
    for via in (a, c):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
            async with via.http.get(
                f"{via.url}/v1/sessions", params=params, headers=via.auth("admin")
            ) as r:
                assert r.status == 200
                doc = await r.json()
            assert len(doc["sessions"]) <= 4
            assert doc["partial"] == ["dead"]
            seen += [s["id"] for s in doc["sessions"]]
            pages += 1
            cursor = doc["next"]
            if cursor is None:
                break
            assert pages < 20
        assert seen == sorted(owned)
        assert pages == 4
    async with a.http.get(
        f"{a.url}/v1/sessions", params={"cursor": "*"}, headers=a.auth("admin")
    ) as r:
        assert r.status == 400  # refused before any instance is asked


async def test_reports_are_served_by_any_instance(settings: Settings, tmp_path: Any) -> None:
    """With one shared store: a live session's report through a non-owner (relayed to the
    owner, which checkpoints it first), and an ended one from the store anywhere."""
    shared = Settings(**{**settings.__dict__, "db_path": str(tmp_path / "reports.db")})
    async with cluster(shared, ["a", "b"], {"r1": "b"}) as two:
        a, b = two["a"], two["b"]
        assert await post_sample(a, "r1", 0) == 204
        async with a.http.get(f"{a.url}/v1/sessions/r1/report", headers=a.auth("admin")) as r:
            assert r.status == 200, await r.text()
            doc = await r.json()
            assert doc["live"]["id"] == "r1" and r.headers["Cache-Control"] == "no-store"
        async with a.http.get(
            f"{a.url}/v1/sessions/r1/report.html", params={"token": a.token("watch", "r1")}
        ) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        await b.sessions.close_all("test")
        del a.owners.owner_by_session["r1"]  # the owner let go: nobody owns it any more
        async with a.http.get(f"{a.url}/v1/sessions/r1/report", headers=a.auth("admin")) as r:
            assert r.status == 200, await r.text()
            assert "live" not in await r.json()


def test_every_relayed_route_exists(settings: Settings) -> None:
    """The relay's route table names real routes (a renamed route would silently stop
    being relayed)."""
    app = create_app(settings)
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert set(RELAYED_ROUTES) <= routes
