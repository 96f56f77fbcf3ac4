"""Every raised and cleared warning written into its session's report."""

from __future__ import annotations

from ..core.warnings import WarningEvent
from ..sessions.observer import SessionEnd, SessionObserver
from ..sessions.registry import SessionRegistry
from ..warnings.runtime import WarningObserver
from .async_store import AsyncReportStore


class WarningTimeline(SessionObserver, WarningObserver):
    """Writes every raised/cleared warning into its session's report.

    A clearing updates the row its raising wrote, found by the raise time kept here
    until the warning clears or its session ends.
    """

    def __init__(self, sessions: SessionRegistry, store: AsyncReportStore) -> None:
        self._sessions = sessions
        self._store = store
        self.raised: dict[tuple[str, str, str | None], float] = {}
        "(session id, kind, role) → raise time of warnings still open."

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        session = self._sessions.sessions.get(session_id)
        if session is None:
            return
        key = (session_id, event.kind, event.role)
        # The event's own time, so the report and the live stream agree to the millisecond.
        at = event.at
        if event.type == "raised":
            if session.live:  # raised by the last look at an ended session: nothing clears it
                self.raised[key] = at
            raised_at, cleared_at = at, None
        else:
            raised_at, cleared_at = self.raised.pop(key, at), at
        self._store.record_warning(
            session_id=session_id,
            session_started_at=session.started_at,
            kind=event.kind,
            severity=event.severity,
            role=event.role,
            raised_at=raised_at,
            cleared_at=cleared_at,
            value=event.value,
            threshold=event.threshold,
        )

    def on_session_ended(self, ended: SessionEnd) -> None:
        """Warnings still open stay open in the report (they run to its end); forget them."""
        session_id = ended.session.id
        for key in [k for k in self.raised if k[0] == session_id]:
            del self.raised[key]
