"""Report writes waiting for the store: one merged entry per session, oldest first, bounded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from .model import Checkpoint, WarningRecord

PendingKind = Literal["checkpoint", "final"]
PENDING_KINDS: tuple[PendingKind, ...] = ("checkpoint", "final")
MIN_PENDING_REPORTS = 200
"The bound on reports waiting in memory is twice the leg cap, and never below this."

SessionKey = tuple[str, float]
"(session id, started_at): a platform may reuse an id, each start is its own report."


def pending_bound(max_legs: int) -> int:
    """How many reports may wait: room for a checkpoint of every live session (at most one
    per leg) and for as many ended sessions' final reports again."""
    return max(MIN_PENDING_REPORTS, 2 * max_legs)


def merge_checkpoints(older: Checkpoint, newer: Checkpoint) -> Checkpoint:
    """One checkpoint that writes what `older` then `newer` would.

    Checkpoints are incremental: timeline points replace by (role, t_seconds), a role's
    speech is replaced from an index on, the rest (totals, turns, dropouts, the end) is
    whole in each. So points and speech merge; everything else is the newer's.
    """
    points = {(p.role, p.t_seconds): p for p in older.points}
    points.update({(p.role, p.t_seconds): p for p in newer.points})
    legs = {leg.role: leg for leg in older.legs}
    legs.update({leg.role: leg for leg in newer.legs})
    newer_from = dict(newer.speech_from)
    speech_from = dict(newer_from)
    for role, index in older.speech_from:
        speech_from[role] = min(index, newer_from.get(role, index))
    kept = [s for s in older.speech if s.role not in newer_from or s.index < newer_from[s.role]]
    return replace(
        newer,
        legs=tuple(legs.values()),
        points=tuple(points.values()),
        speech_from=tuple(speech_from.items()),
        speech=(*kept, *newer.speech),
    )


@dataclass
class Pending:
    """What one session still has to write; its later writes merge into it."""

    session_id: str
    started_at: float
    seq: int
    "Order of the oldest write merged in (a flush waits by it)."
    checkpoint: Checkpoint | None = None
    final: bool = False
    "`checkpoint` is the session's final state."
    warnings: dict[tuple[str, str, float], WarningRecord] = field(default_factory=dict)
    "By (kind, role or '', raised_at): a clearing replaces its raising."
    on_final_saved: Callable[[float], None] | None = None
    "Called with the session's degraded ratio once its final report is written."

    @property
    def key(self) -> SessionKey:
        return (self.session_id, self.started_at)

    @property
    def kind(self) -> PendingKind:
        return "final" if self.final else "checkpoint"

    def absorb(self, newer: Pending) -> None:
        """Merge a later entry of the same session into this one, as if written in order."""
        if newer.checkpoint is not None:
            older = self.checkpoint
            self.checkpoint = (
                newer.checkpoint if older is None else merge_checkpoints(older, newer.checkpoint)
            )
        self.final = self.final or newer.final
        self.warnings.update(newer.warnings)
        self.on_final_saved = self.on_final_saved or newer.on_final_saved


class PendingReports:
    """Writes waiting for the store, oldest session first, at most `max_reports` sessions.

    When a new session's write would pass the bound, the oldest live session's checkpoint
    is dropped; a final report only when nothing but final reports waits. Drops are
    counted in `dropped`. No IO here: the store's writer takes entries one at a time.
    """

    def __init__(self, max_reports: int) -> None:
        if max_reports < 1:
            raise ValueError("max_reports must be at least 1")
        self.max_reports = max_reports
        self.dropped: dict[PendingKind, int] = dict.fromkeys(PENDING_KINDS, 0)
        self.last_seq = 0
        self._entries: OrderedDict[SessionKey, Pending] = OrderedDict()
        self._writing: Pending | None = None

    def __len__(self) -> int:
        return len(self._entries) + (self._writing is not None)

    def add(
        self,
        session_id: str,
        started_at: float,
        *,
        checkpoint: Checkpoint | None = None,
        final: bool = False,
        warning: WarningRecord | None = None,
        on_final_saved: Callable[[float], None] | None = None,
    ) -> list[Pending]:
        """Queue a write; returns the entries dropped to stay within the bound."""
        self.last_seq += 1
        entry = Pending(
            session_id,
            started_at,
            self.last_seq,
            checkpoint=checkpoint,
            final=final,
            on_final_saved=on_final_saved,
        )
        if warning is not None:
            entry.warnings[(warning.kind, warning.role or "", warning.raised_at)] = warning
        existing = self._entries.get(entry.key)
        if existing is not None:
            existing.absorb(entry)
            return []
        self._entries[entry.key] = entry
        return self._enforce_bound()

    def take(self) -> Pending | None:
        """The oldest entry, to write now; then call `written()` or `put_back()`."""
        if self._writing is not None:
            raise RuntimeError("the previous entry is still being written")
        if not self._entries:
            return None
        _, self._writing = self._entries.popitem(last=False)
        return self._writing

    def written(self) -> None:
        self._writing = None

    def put_back(self) -> list[Pending]:
        """The taken entry was not written: it goes first again, merged with whatever its
        session queued meanwhile (which must land after it). Returns entries dropped."""
        entry, self._writing = self._writing, None
        if entry is None:
            return []
        newer = self._entries.pop(entry.key, None)
        if newer is not None:
            entry.absorb(newer)
        self._entries[entry.key] = entry
        self._entries.move_to_end(entry.key, last=False)
        return self._enforce_bound()

    def oldest_seq(self) -> int | None:
        """Seq of the oldest write not yet landed, None when nothing waits."""
        seqs = [e.seq for e in (self._writing, next(iter(self._entries.values()), None)) if e]
        return min(seqs, default=None)

    def counts(self) -> dict[PendingKind, int]:
        counts = dict.fromkeys(PENDING_KINDS, 0)
        for entry in self._all():
            counts[entry.kind] += 1
        return counts

    def has_session(self, session_id: str) -> bool:
        return any(e.session_id == session_id for e in self._all())

    def has_started_between(self, since: float | None, until: float | None) -> bool:
        """Whether a waiting report's session started in [since, until)."""
        return any(
            (since is None or e.started_at >= since) and (until is None or e.started_at < until)
            for e in self._all()
        )

    def _all(self) -> list[Pending]:
        return [*self._entries.values(), *([self._writing] if self._writing else [])]

    def _enforce_bound(self) -> list[Pending]:
        dropped = []
        while len(self) > self.max_reports and self._entries:
            victim = next((e for e in self._entries.values() if not e.final), None)
            if victim is None:
                victim = next(iter(self._entries.values()))
            del self._entries[victim.key]
            self.dropped[victim.kind] += 1
            dropped.append(victim)
        return dropped
