"""Which stored report a session that starts here continues (it moved from another instance).

A report whose session was cut off by its instance — killed (left open, or marked
`interrupted` by whoever started next), or drained past its deadline (`shutdown`) — and
whose last checkpoint is recent is continued: same start, totals and speech carried, one
reconnect counted. A session that ended (`ended`, `lost`) is over; a new one with the same
id starts a new report, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..sessions.registry import ResumeLookup
from ..sessions.resume import CarriedDropout, CarriedRole, CarriedTotals, Resumed
from .async_store import AsyncReportStore
from .model import SessionReport
from .sql_store import BaseReportStore

log = logging.getLogger(__name__)

RESUMABLE_END_REASONS = (None, "interrupted", "shutdown")
LOOKUP_TIMEOUT_SECONDS = 2.0
"A first leg waits at most this for the store; then its session starts a new report."


def resumed_from(report: SessionReport, *, now: float, window_seconds: float) -> Resumed | None:
    """What a session continues of `report` at `now` (Unix seconds); None if it is over or
    its last checkpoint is older than `window_seconds`."""
    if report.end_reason not in RESUMABLE_END_REASONS:
        return None
    if now - report.checkpoint_at > window_seconds:
        return None
    roles = []
    for leg in report.legs:
        roles.append(
            CarriedRole(
                role=leg.role,
                totals=CarriedTotals(
                    packets_received=leg.packets_received,
                    packets_lost=leg.packets_lost,
                    dropouts=leg.dropouts,
                    dropout_seconds=leg.dropout_seconds,
                    dropouts_in_speech=leg.dropouts_in_speech,
                    dropout_in_speech_seconds=leg.dropout_in_speech_seconds,
                ),
                reconnects=leg.reconnects,
                speech=tuple(
                    (s.start_seconds, s.end_seconds)
                    for s in sorted(report.speech, key=lambda s: s.index)
                    if s.role == leg.role
                ),
                dropouts=tuple(
                    CarriedDropout(d.t_seconds, d.duration_seconds, d.in_speech)
                    for d in report.dropouts
                    if d.role == leg.role
                ),
            )
        )
    return Resumed(started_at=report.started_at, roles=tuple(roles))


def resume_lookup(
    store: AsyncReportStore, *, window_seconds: float, wall_clock: Callable[[], float]
) -> ResumeLookup:
    """The registry's `resume_from`: the newest report of a session id, if it continues."""

    async def lookup(session_id: str) -> Resumed | None:
        if not store.is_open:
            return None

        def load(s: BaseReportStore) -> SessionReport | None:
            return s.load(session_id)

        try:
            report = await asyncio.wait_for(store.run(load), LOOKUP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("report store too slow to say whether a session continues")
            return None
        if report is None:
            return None
        resumed = resumed_from(report, now=wall_clock(), window_seconds=window_seconds)
        if resumed is not None:
            log.info("a session continues its stored report (it moved to this instance)")
        return resumed

    return lookup
