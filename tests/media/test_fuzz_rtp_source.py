"""Any datagram on a plain-RTP port, from the sender or anyone else: measured or counted as
ignored, exactly once, never an exception."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from qualmon.config import Settings

from ..fuzzing import examples
from ..rtp_sender import client_speech
from .test_rtp_source import Attached, sender_for, start

pytestmark = pytest.mark.fuzz

SENDER, OTHER = ("127.0.0.1", 50000), ("127.0.0.1", 50002)
PAYLOADS = client_speech(4.0, 1.0)
ODD_TYPES = {7: 0, 11: 72, 13: 127}
"Packets of the stream sent with another payload type (72 with the marker bit reads as RTCP)."


def _mutate(data: bytes, at: int, value: int, cut: int) -> bytes:
    at %= max(len(data), 1)
    changed = data[:at] + bytes([value]) + data[at + 1 :]
    return changed[:cut] if cut < len(changed) else changed


def datagrams(stream: list[bytes]) -> st.SearchStrategy[bytes]:
    """Packets of a real stream (any of them, in any order, again), with one byte changed
    and maybe cut short, or any bytes."""
    real = st.sampled_from(stream)
    return st.one_of(
        real,
        st.builds(_mutate, real, st.integers(0, 2000), st.integers(0, 255), st.integers(0, 2000)),
        st.binary(max_size=1600),
        st.sampled_from([b"", b"\x80", b"\x80\xc8", b"\x80\xc9" + bytes(6), bytes(1500)]),
    )


@pytest.fixture(params=[False, True], ids=["rtp", "srtp"])
async def attached(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Attached]:
    leg = await start(settings, srtp=request.param)
    yield leg
    await leg.leg.close("closed")


@examples()
@given(data=st.data())
async def test_every_datagram_is_measured_or_ignored_once(
    attached: Attached, data: st.DataObject
) -> None:
    """Each datagram adds exactly one to the packets the leg took (received or duplicate)
    or to one ignored reason; only the latched sender's packets are ever measured."""
    source, stats = attached.source, attached.leg.stats
    with sender_for(attached) as sender:  # SRTP packets are protected in sequence order
        stream = [
            sender.packet(i, payload, payload_type=ODD_TYPES.get(i % 17, 111))
            for i, payload in enumerate(PAYLOADS)
        ]
    latch_first = data.draw(st.booleans())  # drawn every time: the draws must not vary
    if latch_first and stats.packets_received == 0:
        source.on_datagram(stream[0], SENDER)

    def taken() -> int:  # a duplicate is taken by the leg, and counted there as one
        return stats.packets_received + stats.duplicates

    ignored_before, received_before = sum(source.ignored.values()), taken()
    address = data.draw(st.sampled_from([SENDER, SENDER, OTHER]))
    source.on_datagram(data.draw(datagrams(stream)), address)
    ignored = sum(source.ignored.values()) - ignored_before
    received = taken() - received_before
    assert (ignored, received) in ((1, 0), (0, 1))
    event("measured" if received else "ignored")
    if received and address == OTHER:
        assert source.ignored["foreign_source"] == 0  # OTHER latched first
