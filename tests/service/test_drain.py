"""Draining: POST /v1/admin/drain and SIGTERM take no new session, let live legs finish,
then the process saves every report and exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qualmon.service.drain import wait_until_drained
from qualmon.service.drain_state import DrainState
from qualmon.service.keys import drain_key

from ..conftest import Service, wait_for
from ..fakes import FakeClock
from .serving import EXIT_BUDGET_SECONDS, Harness, Server, has_media_checkpoint, stored_rows

OFFER = (Path(__file__).parent.parent / "media" / "offers" / "chrome_audio.sdp").read_text()
DRAIN = "/v1/admin/drain"
OPUS = {"role": "client", "codec": "opus", "payload_type": 111, "clock_rate": 48000}


class Legs:
    """A registry stand-in: just a live-leg count."""

    def __init__(self, count: int) -> None:
        self.count = count

    def live_leg_count(self) -> int:
        return self.count


# -- the state, with a clock that moves only when told ---------------------------------


def test_a_second_signal_ends_a_signal_begun_drain() -> None:
    """First SIGTERM drains, the second stops now; `on_drain` callbacks run once, and one
    that raises is logged without stopping the others."""
    drain = DrainState(600.0)
    called: list[str] = []

    def broken() -> None:
        raise RuntimeError("membership down")

    drain.on_drain += [broken, lambda: called.append("membership")]
    assert drain.on_signal() == "draining"
    assert drain.draining and not drain.finished.is_set()
    assert drain.on_signal() == "stopping now"
    assert drain.finished.is_set()
    assert called == ["membership"]


def test_an_api_begun_drain_survives_the_first_signal() -> None:
    """`serve --workers` forwards one SIGTERM to a worker already drained through the API:
    that worker carries on draining; only a further signal ends it."""
    drain = DrainState(600.0)
    assert drain.start() and not drain.start()
    assert drain.on_signal() == "draining" and not drain.finished.is_set()
    assert drain.on_signal() == "stopping now" and drain.finished.is_set()


async def test_drained_when_legs_end_or_time_is_up(clock: FakeClock) -> None:
    """Finished at once without live legs; with legs, only once drain_seconds have passed."""
    idle = DrainState(5.0, clock=clock, wall_clock=clock.wall)
    idle.start()
    await asyncio.wait_for(wait_until_drained(idle, Legs(0), tick=0.01), 5.0)

    drain = DrainState(5.0, clock=clock, wall_clock=clock.wall)
    watching = asyncio.create_task(wait_until_drained(drain, Legs(2), tick=0.01))
    drain.start()
    await asyncio.sleep(0.05)
    assert not drain.finished.is_set()
    clock.advance(4.9)
    await asyncio.sleep(0.05)
    assert not drain.finished.is_set()
    clock.advance(0.1)
    await asyncio.wait_for(watching, 5.0)
    assert drain.finished.is_set()


# -- the endpoint, in process ----------------------------------------------------------


async def post_drain(service: Service, headers: dict[str, str]) -> tuple[int, Any]:
    async with service.http.post(service.url + DRAIN, headers=headers) as r:
        body = await r.json() if r.status == 202 else await r.text()
        return r.status, body


async def test_drain_needs_an_admin_token(service: Service) -> None:
    """No token 401, a watch or publish token 403; none of them drains."""
    assert (await post_drain(service, {}))[0] == 401
    assert (await post_drain(service, service.auth("watch", "S1")))[0] == 403
    assert (await post_drain(service, service.auth("publish", "S1", "client")))[0] == 403
    assert not service.app[drain_key].draining
    async with service.http.get(service.url + "/readyz") as r:
        assert r.status == 200


async def test_drain_refuses_new_sessions_and_says_what_remains(service: Service) -> None:
    """202 with what is live and the deadline (the same on a repeat); /readyz 503
    `draining`; qualmon_draining 1; a new session's WHIP offer and plain-RTP attach 503 +
    Retry-After."""
    registry = service.metrics.registry
    assert registry.get_sample_value("qualmon_draining") == 0.0
    status, first = await post_drain(service, service.auth("admin"))
    assert status == 202
    assert first["state"] == "draining" and first["live_legs"] == 0
    assert first["live_sessions"] == 0 and 0 < first["seconds_left"] <= 600
    status, again = await post_drain(service, service.auth("admin"))
    assert status == 202 and again["deadline"] == first["deadline"]
    assert registry.get_sample_value("qualmon_draining") == 1.0
    async with service.http.get(service.url + "/readyz") as r:
        assert (r.status, await r.text()) == (503, "draining\n")

    headers = {**service.auth("publish", "new", "client"), "Content-Type": "application/sdp"}
    async with service.http.post(service.whip_url, data=OFFER, headers=headers) as r:
        assert r.status == 503, await r.text()
        assert r.headers["Retry-After"].isdigit()
        assert (await r.text()).startswith("draining")
    attach = {**service.auth("publish", "new", "client"), "Content-Type": "application/json"}
    async with service.http.post(
        service.url + "/v1/sessions/new/rtp", data=json.dumps(OPUS), headers=attach
    ) as r:
        assert r.status == 503 and r.headers["Retry-After"].isdigit(), await r.text()
    assert service.sessions.sessions == {}


async def test_every_answer_names_the_instance(service: Service) -> None:
    """`Qualmon-Instance` on successes, refusals and unknown paths alike."""
    for method, path in [("GET", "/healthz"), ("GET", "/nowhere"), ("POST", DRAIN)]:
        async with service.http.request(method, service.url + path) as r:
            assert r.headers["Qualmon-Instance"].endswith(f"-{os.getpid()}")


# -- a real `qualmon serve`, real legs ---------------------------------------------------


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        await h.close_publishers()


async def packets_of(http: aiohttp.ClientSession, server: Server, admin: dict[str, str]) -> int:
    async with http.get(server.url + "/v1/sessions/kept", headers=admin) as r:
        assert r.status == 200, await r.text()
        doc = await r.json()
    return sum(int(role["packets_received"]) for role in doc["legs"].values())


async def readyz(http: aiohttp.ClientSession, server: Server) -> tuple[int, str]:
    async with http.get(server.url + "/readyz") as r:
        return r.status, await r.text()


@pytest.mark.realtime
async def test_a_drained_service_measures_its_legs_to_their_end(harness: Harness) -> None:
    """Drain through the API with a live leg: ready 503, a new session refused, the live
    session still measured and still taking its other participant; when both leave, the
    process exits 0 and the report ended as `ended`."""
    async with (
        harness.serve(QUALMON_DRAIN_SECONDS="600") as server,
        aiohttp.ClientSession() as http,
    ):
        admin = harness.admin()
        therapist = await harness.publish(server, "kept", "therapist")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "kept", ("therapist",)),
            timeout=20.0,
            what="a checkpoint with media",
        )
        async with http.post(server.url + DRAIN, headers=admin) as r:
            assert r.status == 202, await r.text()
            answer = await r.json()
        assert (answer["live_legs"], answer["live_sessions"]) == (1, 1)
        assert await readyz(http, server) == (503, "draining\n")

        with pytest.raises(Exception, match="answered 503") as refused:
            await harness.publish(server, "elsewhere", "client")
        assert getattr(refused.value, "status", None) == 503
        client = await harness.publish(server, "kept", "client")  # its session lives here

        before = await packets_of(http, server, admin)
        await wait_for(
            lambda: packets_after(http, server, admin, before),
            timeout=20.0,
            what="packets counted while draining",
        )
        await therapist.stop(delete=True)
        assert server.proc.returncode is None  # the client's leg is still live
        await client.stop(delete=True)
        code = await asyncio.wait_for(server.wait(), 30.0)
        assert code == 0, server.stderr()
    rows = stored_rows(harness.db, "kept")
    assert rows is not None and rows["end_reason"] == "ended", rows
    assert {leg["end_reason"] for leg in rows["legs"].values()} == {"closed"}  # DELETEd
    assert all(leg["packets_received"] > 0 for leg in rows["legs"].values())
    assert stored_rows(harness.db, "elsewhere") is None
    harness.assert_nothing_leaked()


async def packets_after(
    http: aiohttp.ClientSession, server: Server, admin: dict[str, str], before: int
) -> bool:
    return await packets_of(http, server, admin) > before


@pytest.mark.realtime
async def test_sigterm_drains_until_the_deadline_then_saves(harness: Harness) -> None:
    """SIGTERM with QUALMON_DRAIN_SECONDS=2 and a publisher that never leaves: draining,
    then its leg ends as `shutdown`, the report is saved and the exit code is 0."""
    async with (
        harness.serve(QUALMON_DRAIN_SECONDS="2") as server,
        aiohttp.ClientSession() as http,
    ):
        await harness.publish(server, "kept", "client")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "kept", ("client",)),
            timeout=20.0,
            what="a checkpoint with media",
        )
        server.proc.send_signal(signal.SIGTERM)
        await wait_for(
            lambda: readyz_says(http, server, "draining\n"), timeout=10.0, what="draining"
        )
        code = await asyncio.wait_for(server.wait(), 2.0 + EXIT_BUDGET_SECONDS + 10.0)
        assert code == 0, server.stderr()
    rows = stored_rows(harness.db, "kept")
    assert rows is not None and rows["end_reason"] == "shutdown", rows
    leg = rows["legs"]["client"]
    assert leg["end_reason"] == "shutdown" and leg["packets_received"] > 0
    assert "drain time is up: ending 1 live legs" in server.stderr()


async def readyz_says(http: aiohttp.ClientSession, server: Server, text: str) -> bool:
    try:
        return await readyz(http, server) == (503, text)
    except aiohttp.ClientError:
        return False


@pytest.mark.realtime
async def test_a_second_sigterm_stops_the_drain_now(harness: Harness) -> None:
    """A 600 s drain cut short by a second SIGTERM: exit 0 within the shutdown budget,
    the live leg's report saved as `shutdown`."""
    async with (
        harness.serve(QUALMON_DRAIN_SECONDS="600") as server,
        aiohttp.ClientSession() as http,
    ):
        await harness.publish(server, "kept", "therapist")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "kept", ("therapist",)),
            timeout=20.0,
            what="a checkpoint with media",
        )
        server.proc.send_signal(signal.SIGTERM)
        await wait_for(
            lambda: readyz_says(http, server, "draining\n"), timeout=10.0, what="draining"
        )
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS + 10.0)
        assert code == 0, server.stderr()
    rows = stored_rows(harness.db, "kept")
    assert rows is not None and rows["end_reason"] == "shutdown", rows
    assert rows["legs"]["therapist"]["packets_received"] > 0
