"""POST /whip and PATCH /whip/{resource} with mutated real offers and trickle fragments:
201/204 or a one-line 4xx, never a 5xx, and a refusal leaves nothing behind."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from hypothesis import event, example, given
from hypothesis import strategies as st

from qualmon.sessions.leg import Leg

from ..conftest import Service, make_settings, wait_for
from ..fuzzing import Allocation, examples, fuzz_service, mutated_text, new_tasks, one_line_refusal
from ..media.test_fuzz_offer import BROWSER_OFFERS, OFFERS
from ..media.test_offer import AIORTC_OFFER

pytestmark = pytest.mark.fuzz

SESSION, ROLE = "fz", "client"


class PeerConnections:
    """Every RTCPeerConnection WHIP legs make while installed, to find any left open."""

    def __init__(self) -> None:
        self.made: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()

    def open(self) -> list[RTCPeerConnection]:
        return [pc for pc in list(self.made) if pc.connectionState != "closed"]


@pytest.fixture
def peer_connections(monkeypatch: pytest.MonkeyPatch) -> PeerConnections:
    tracker = PeerConnections()

    class Tracked(RTCPeerConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            tracker.made.add(self)

    monkeypatch.setattr("qualmon.media.whip_source.RTCPeerConnection", Tracked)
    return tracker


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    # Legs that never connect must outlive a long `make fuzz` run: no reaping at 20 s.
    settings = make_settings(connect_timeout_seconds=3600.0, max_legs=1000)
    async with fuzz_service(settings) as running:
        yield running


async def post_offer(service: Service, offer: str) -> tuple[int, str, dict[str, str]]:
    headers = {"Content-Type": "application/sdp", **service.auth("publish", SESSION, ROLE)}
    async with service.http.post(service.whip_url, data=offer.encode(), headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


async def delete(service: Service, location: str) -> None:
    headers = service.auth("publish", SESSION, ROLE)
    async with service.http.delete(service.url + location, headers=headers) as r:
        assert r.status == 200, await r.text()


@examples(40)
@given(offer=mutated_text(OFFERS))
# Found by fuzzing: a BUNDLE group led by a mid no section has was a 500 (AttributeError in
# aiortc's createAnswer) and left a peer connection that could not be closed.
@example(offer=BROWSER_OFFERS["chrome_av"].replace("BUNDLE 0 1 2", "BUNDLE -45493 1 2"))
@example(offer=AIORTC_OFFER + AIORTC_OFFER[AIORTC_OFFER.index("m=audio") :])
# Found by fuzzing: a video section without a=setup, an m=text section: 500s (AttributeError).
@example(offer=BROWSER_OFFERS["chrome_av"].replace("a=setup:actpass\r\na=mid:1", "a=mid:1"))
@example(offer=AIORTC_OFFER + "m=text 9 RTP/AVP 98\r\na=mid:5\r\na=setup:actpass\r\n")
async def test_post_whip_answers_or_refuses_and_a_refusal_allocates_nothing(
    service: Service, peer_connections: PeerConnections, offer: str
) -> None:
    """Every mutated offer is a 201 (its leg then deleted) or a 4xx with a one-line
    reason; after a 4xx there is no new session, leg, task or open peer connection."""
    before = Allocation.of(service)
    tasks_before = set(asyncio.all_tasks())
    status, text, headers = await post_offer(service, offer)
    event(f"status {status}")
    assert status < 500, text
    if status == 201:
        assert text.startswith("v=0\r\n")
        await delete(service, headers["Location"])
    else:
        assert one_line_refusal(status, text), (status, text)
        assert Allocation.of(service) == before
    await wait_for(
        lambda: not new_tasks(tasks_before) and not peer_connections.open(),
        timeout=10.0,
        what="no task or peer connection left from the request",
    )
    assert not service.sessions.legs_by_resource


FRAGMENT_UFRAG, FRAGMENT_PWD = "Xq3n", "8Hk2pLm4Qr6sTv8wXy0zAb"
TRICKLE_OFFER = "".join(
    line + "\r\n"
    for line in AIORTC_OFFER.split("\r\n")
    if line and not line.startswith(("a=candidate:", "a=end-of-candidates"))
)
"The aiortc offer without candidates, as a client that trickles them all sends it."
FRAGMENTS = tuple(
    "\r\n".join(lines) + "\r\n"
    for lines in (
        [
            f"a=ice-ufrag:{FRAGMENT_UFRAG}",
            f"a=ice-pwd:{FRAGMENT_PWD}",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0",
            "a=mid:0",
            "a=candidate:1387637174 1 udp 2122260223 127.0.0.1 61764 typ host generation 0"
            f" ufrag {FRAGMENT_UFRAG} network-id 1",
        ],
        [
            f"a=ice-ufrag:{FRAGMENT_UFRAG}",
            f"a=ice-pwd:{FRAGMENT_PWD}",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0",
            "a=mid:0",
            "a=candidate:842163049 1 udp 1677729535 127.0.0.1 61765 typ srflx raddr 127.0.0.1"
            " rport 61764 generation 0 network-cost 999",
            "a=candidate:2999745851 1 udp 2122260223 3b1c7a2e-1d4f-4e5a-9b6c.local 61766 typ"
            " host generation 0",
            "a=candidate:1 1 TCP 2105524479 ::1 9 typ host tcptype active",
        ],
        ["a=end-of-candidates"],
    )
)
"Trickle fragments (RFC 8840) as browsers PATCH them; addresses on loopback only."


class TrickleLeg:
    """One live WHIP leg to PATCH, made again whenever it ended (an ICE failure)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.location = ""

    def leg(self) -> Leg | None:
        return self.service.sessions.legs_by_resource.get(self.location.rsplit("/", 1)[-1])

    async def ensure(self) -> str:
        leg = self.leg()
        if leg is None or leg.state == "ended":
            status, text, headers = await post_offer(self.service, TRICKLE_OFFER)
            assert status == 201, text
            self.location = headers["Location"]
        return self.location


@pytest.fixture
async def trickle_leg(service: Service) -> AsyncIterator[TrickleLeg]:
    leg = TrickleLeg(service)
    yield leg
    if leg.leg() is not None:
        await delete(service, leg.location)


@examples(60)
@given(
    fragment=st.one_of(
        mutated_text(FRAGMENTS),
        st.binary(max_size=64),
    )
)
async def test_patch_whip_applies_or_refuses_a_fragment(
    service: Service, trickle_leg: TrickleLeg, fragment: str | bytes
) -> None:
    """A mutated trickle fragment (or bytes that are not UTF-8) is a 204 or a one-line 4xx
    (422 for new ICE credentials), never a 5xx."""
    location = await trickle_leg.ensure()
    headers = {
        "Content-Type": "application/trickle-ice-sdpfrag",
        **service.auth("publish", SESSION, ROLE),
    }
    body = fragment.encode() if isinstance(fragment, str) else fragment
    async with service.http.patch(service.url + location, data=body, headers=headers) as r:
        status, text = r.status, await r.text()
    event(f"status {status}")
    assert status == 204 or one_line_refusal(status, text), (status, text)
