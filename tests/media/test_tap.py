"""The aiortc receiver internals media/tap.py relies on: a rename must fail here, loudly."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from aiortc import RTCRtpReceiver

from qualmon.media.tap import (
    DECODER_STOPPER,
    PLI_SENDER,
    count_keyframe_requests,
    install_rtp_tap,
)


def test_the_receiver_internals_we_wrap_still_exist() -> None:
    """aiortc 1.16 names: if one fails, packets go untapped, decoders keep running or
    keyframe requests go uncounted — update media/tap.py for the new aiortc."""
    for name, params in (
        ("_handle_rtp_packet", ["packet", "arrival_time_ms"]),
        (PLI_SENDER, ["media_ssrc"]),
        (DECODER_STOPPER, []),
        ("receive", ["parameters"]),
    ):
        method = getattr(RTCRtpReceiver, name, None)
        assert method is not None, f"aiortc's RTCRtpReceiver has no {name} any more"
        assert list(inspect.signature(method).parameters)[1:] == params, name


class _Receiver:
    """Just the methods of RTCRtpReceiver that tap.py wraps."""

    def __init__(self) -> None:
        self.plis: list[int] = []
        self.packets: list[Any] = []

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        self.plis.append(media_ssrc)

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        self.packets.append(packet)


async def test_keyframe_requests_are_counted_and_still_sent() -> None:
    receiver = _Receiver()
    counted: list[None] = []
    uninstall = count_keyframe_requests(receiver, lambda: counted.append(None))  # type: ignore[arg-type]
    await receiver._send_rtcp_pli(7)
    await receiver._send_rtcp_pli(7)
    assert len(counted) == 2 and receiver.plis == [7, 7]
    uninstall()
    await receiver._send_rtcp_pli(8)
    assert len(counted) == 2 and receiver.plis == [7, 7, 8]


async def test_tap_sees_packets_first_with_its_clock() -> None:
    receiver = _Receiver()
    seen: list[tuple[Any, float]] = []
    uninstall = install_rtp_tap(receiver, lambda p, t: seen.append((p, t)), clock=lambda: 4.5)  # type: ignore[arg-type]
    await receiver._handle_rtp_packet("p1", 0)
    assert seen == [("p1", 4.5)] and receiver.packets == ["p1"]
    uninstall()
    await asyncio.gather(receiver._handle_rtp_packet("p2", 0))
    assert len(seen) == 1 and receiver.packets == ["p1", "p2"]


def test_a_renamed_pli_method_goes_uncounted_not_failed() -> None:
    uninstall = count_keyframe_requests(object(), lambda: None)  # type: ignore[arg-type]
    uninstall()
