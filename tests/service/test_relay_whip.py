"""WHIP through a cluster with real aiortc publishers: the leg lives on the session's owner
whichever instance the offer, the trickle PATCH and the DELETE were sent to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qualmon.config import Settings
from qualmon.sim.publisher import WhipPublisher

from ..conftest import wait_for
from .relay_cluster import Instance, cluster, relay_count

pytestmark = pytest.mark.realtime

TRICKLE = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"


@pytest.fixture
async def trio(settings: Settings) -> AsyncIterator[dict[str, Instance]]:
    async with cluster(settings, ["a", "b", "c"], {"w1": "b"}) as instances:
        yield instances


async def test_a_whip_leg_posted_to_a_non_owner_lives_on_the_owner(
    trio: dict[str, Instance],
) -> None:
    """POST /whip to a: the answer (and so the ICE candidates) is b's, media flows to b;
    Location is relative, so PATCH and DELETE work through c, with the publisher's token
    and with an admin token (found by asking each instance)."""
    a, b, c = trio["a"], trio["b"], trio["c"]
    client = WhipPublisher(url=a.whip_url, token=a.token("publish", "w1", "client"))
    therapist = WhipPublisher(url=c.whip_url, token=c.token("publish", "w1", "therapist"))
    try:
        await client.start()
        await therapist.start()
        assert client.resource_url is not None and client.resource_url.startswith(a.url + "/whip/")
        resource = client.resource_url.rsplit("/", 1)[1]
        assert resource in b.sessions.legs_by_resource
        assert not a.sessions.legs_by_resource and not c.sessions.legs_by_resource
        assert ("w1", True) in a.owners.asked and ("w1", True) in c.owners.asked

        async def both_measured() -> bool:
            doc = await b.session_json("w1")
            return all(doc["legs"][r]["packets_received"] > 0 for r in ("client", "therapist"))

        await wait_for(both_measured, timeout=20.0, what="media reaching the owner")
        docs = [await i.session_json("w1") for i in (a, b, c)]
        assert {d["id"] for d in docs} == {"w1"}
        assert {tuple(sorted(d["legs"])) for d in docs} == {("client", "therapist")}
        assert {d["started_at"] for d in docs} == {docs[1]["started_at"]}

        via_c = c.url + "/whip/" + resource
        trickle_type = {"Content-Type": "application/trickle-ice-sdpfrag"}
        hdrs = {**c.auth("publish", "w1", "client"), **trickle_type}
        async with c.http.patch(via_c, data=TRICKLE, headers=hdrs) as r:
            assert r.status == 204, await r.text()
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        admin = {**c.auth("admin"), **trickle_type}
        async with c.http.patch(via_c, data=TRICKLE, headers=admin) as r:
            assert r.status == 204, await r.text()
        async with c.http.delete(via_c, headers=c.auth("admin")) as r:
            assert r.status == 200 and await r.text() == "ended\n"
        assert resource not in b.sessions.legs_by_resource
        async with c.http.delete(via_c, headers=c.auth("admin")) as r:
            assert r.status == 404  # asked everywhere, nowhere any more
        await therapist.stop()  # its DELETE, relayed from c to b
        assert not b.sessions.legs_by_resource
        doc = await a.session_json("w1")
        assert doc["state"] == "ended"
        assert relay_count(c, "relayed") >= 5 and relay_count(c, "unreachable") == 0
    finally:
        for publisher in (client, therapist):
            await publisher.stop(delete=False)


async def test_a_whip_offer_for_an_unreachable_owner_is_503(settings: Settings) -> None:
    """The offer is not answered locally when its owner is down: 503 + Retry-After + CORS."""
    async with cluster(settings, ["a"], {"w2": "dead"}) as one:
        a = one["a"]
        a.owners.urls["dead"] = "http://127.0.0.1:9"  # discard port: nothing listens
        publisher = WhipPublisher(url=a.whip_url, token=a.token("publish", "w2", "client"))
        try:
            with pytest.raises(Exception) as refused:
                await publisher.start()
            assert getattr(refused.value, "status", None) == 503
        finally:
            await publisher.stop(delete=False)
        async with a.http.post(
            a.whip_url,
            data="v=0\r\n",
            headers={**a.auth("publish", "w2", "client"), "Content-Type": "application/sdp"},
        ) as r:
            assert r.status == 503 and "Retry-After" in r.headers
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert not a.sessions.legs_by_resource and relay_count(a, "unreachable") == 2
