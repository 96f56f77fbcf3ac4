"""A WHIP offer with a non-ASCII digit, through the real app: a 400, never a 500.

Not marked realtime: the offer is refused before any media or ICE starts.
"""

from __future__ import annotations

import logging

import pytest

from ..conftest import Service
from ..media.test_offer import AIORTC_OFFER

MLINE = "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8"


@pytest.mark.parametrize("payload_types", ["²", "96 ²", "٣", "９６"])
async def test_non_ascii_payload_type_is_a_400_that_leaves_nothing_behind(
    service: Service, caplog: pytest.LogCaptureFixture, payload_types: str
) -> None:
    """`m=audio 9 UDP/TLS/RTP/SAVPF ²` used to reach int() ("²".isdigit() is True) and
    answer 500; it is a bad offer, said in one line, with no leg or session made."""
    offer = AIORTC_OFFER.replace(MLINE, f"m=audio 9 UDP/TLS/RTP/SAVPF {payload_types}")
    assert offer != AIORTC_OFFER
    headers = {"Content-Type": "application/sdp", **service.auth("publish", "s1", "client")}
    with caplog.at_level(logging.ERROR):
        async with service.http.post(service.whip_url, data=offer, headers=headers) as r:
            status, text = r.status, await r.text()
    assert status == 400, text
    assert text.endswith("\n") and len(text.splitlines()) == 1
    bad_token = payload_types.split()[-1]
    assert text == f"bad offer: m-line 1 (audio): invalid payload type {bad_token!r}\n"
    assert not service.sessions.legs_by_resource
    assert not service.sessions.sessions
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    counted = service.metrics.registry.get_sample_value(
        "qualmon_whip_requests_total", {"method": "POST", "code": "400"}
    )
    assert counted == 1.0
