"""RTT from STUN binding transactions on the selected ICE pair.

A receive-only aiortc leg has no RTT in getStats (no RTCP sender reports flow back).
Browsers report candidate-pair currentRoundTripTime from the same kind of transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aioice import stun
from aiortc import RTCPeerConnection

from .ice import ice_connection, selected_pair


class _ProbeTransaction:
    """Stands in aioice's transaction table so the pair's protocol routes the answer here.

    aioice's own Transaction gives up after 0.5 s without retransmissions, which would
    leave exactly the bad links (RTT > 500 ms) unmeasured.
    """

    def __init__(self, integrity_key: bytes, clock: Callable[[], float]) -> None:
        self._key = integrity_key
        self._clock = clock
        self.answered: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def response_received(self, message: stun.Message, addr: tuple[str, int]) -> None:
        if self.answered.done() or message.message_class != stun.Class.RESPONSE:
            return
        if message.check_message_integrity(self._key):
            self.answered.set_result(self._clock())


async def measure_rtt(
    pc: RTCPeerConnection,
    *,
    timeout_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> float | None:
    """One binding request on the selected pair; seconds, or None if unanswered/not ready.

    No retransmissions: a response to a retransmitted request would be timed from the
    first send and overstate the RTT.
    """
    connection = ice_connection(pc)
    pair = selected_pair(pc)
    if connection is None or pair is None or connection.remote_password is None:
        return None
    key = connection.remote_password.encode("utf8")
    request = connection.build_request(pair, nominate=False)
    request.add_message_integrity(key)
    probe = _ProbeTransaction(key, clock)
    transactions = pair.protocol.transactions
    transactions[request.transaction_id] = probe
    try:
        started = clock()
        pair.protocol.send_stun(request, pair.remote_addr)
        # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancellation that
        # lands as the answer does, and the probe loop calling this then outlives its leg.
        done, _ = await asyncio.wait({probe.answered}, timeout=timeout_seconds)
        if not done:
            return None
        return probe.answered.result() - started
    except (ConnectionError, OSError, AttributeError):
        # AttributeError: the pair's transport vanished while closing.
        return None
    finally:
        transactions.pop(request.transaction_id, None)
