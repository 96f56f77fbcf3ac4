"""The cluster's SQL: instances with leases, and which instance owns which session (one text
for SQLite and PostgreSQL, see `sql_db.Db`). Times are wall-clock Unix seconds passed in."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from ..core.rendezvous import Candidate, choose_owner
from .sql_db import Db

HEARTBEAT_SECONDS = 2.0
"An instance refreshes its row this often."
LEASE_SECONDS = 6.0
"…and is gone once its row was not refreshed for this long (three missed heartbeats)."
CLAIM_GRACE_SECONDS = 30.0
"A claim its owner has no live session for yet (its first leg still being answered) is kept "
"this long before it counts as released; longer than the 20 s an offer may take to connect."
RELEASED_KEEP_SECONDS = 600.0
"A released claim stays this long (the owner keeps an ended session readable for 10 min)."
FORGET_SECONDS = 3600.0
"Rows of instances gone this long are deleted, with their claims."

InstanceState = Literal["serving", "draining"]

_INSTANCE_COLUMNS = (
    "instance_id, advertise_url, state, capacity_legs, live_legs, started_at, lease_until"
)
_OWNER_DEAD = (
    "NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = session_owners.instance_id"
    " AND i.lease_until > ?)"
)
"The claim's owner has no live lease at `?` (now)."


@dataclass(frozen=True)
class InstanceRecord:
    """One instance's row."""

    instance_id: str
    advertise_url: str
    "Its http(s) base URL, for relayed requests."
    state: InstanceState
    capacity_legs: int
    live_legs: int
    started_at: float
    lease_until: float
    "Unix seconds; past it, the instance is gone."

    def candidate(self) -> Candidate:
        return Candidate(
            self.instance_id,
            serving=self.state == "serving",
            live_legs=self.live_legs,
            capacity_legs=self.capacity_legs,
        )


@dataclass(frozen=True)
class Reconciled:
    """What a heartbeat changed in the claims of its instance."""

    adopted: int
    "Sessions live here with no live claim, now claimed by this instance."
    released: int
    "Claims of this instance whose session is no longer live here, now released."


def _record(row: tuple[object, ...]) -> InstanceRecord:
    return InstanceRecord(*row)  # type: ignore[arg-type]


def upsert_instance(db: Db, record: InstanceRecord) -> None:
    """Register or refresh an instance (its lease, state and load)."""
    db.execute(
        f"INSERT INTO instances ({_INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (instance_id) DO UPDATE SET advertise_url = excluded.advertise_url,"
        " state = excluded.state, capacity_legs = excluded.capacity_legs,"
        " live_legs = excluded.live_legs, started_at = excluded.started_at,"
        " lease_until = excluded.lease_until",
        (
            record.instance_id,
            record.advertise_url,
            record.state,
            record.capacity_legs,
            record.live_legs,
            record.started_at,
            record.lease_until,
        ),
    )


def live_instances(db: Db, now: float) -> list[InstanceRecord]:
    """Instances whose lease runs past `now`, by id."""
    rows = db.execute(
        f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE lease_until > ? ORDER BY instance_id",
        (now,),
    )
    return [_record(tuple(r)) for r in rows]


def live_owner(db: Db, session_id: str, now: float) -> tuple[InstanceRecord, bool] | None:
    """The session's owner if its lease is alive, and whether the claim was released."""
    row = db.execute(
        f"SELECT {', '.join('i.' + c for c in _INSTANCE_COLUMNS.split(', '))}, o.released_at"
        " FROM session_owners o JOIN instances i ON i.instance_id = o.instance_id"
        " WHERE o.session_id = ? AND i.lease_until > ?",
        (session_id, now),
    ).fetchone()
    if row is None:
        return None
    return _record(tuple(row[:7])), row[7] is not None


def claim(db: Db, session_id: str, now: float) -> InstanceRecord | None:
    """The session's owner, claiming it for the rendezvous choice among live serving
    instances with room when no live owner holds an unreleased claim; None when no instance
    can take it. Inside a write transaction.

    Atomic on both databases: SQLite's BEGIN IMMEDIATE serialises whole transactions; on
    PostgreSQL the upsert's WHERE is re-checked on the row a concurrent claim committed
    (it then updates nothing), and the read after it sees that claim.
    """
    current = live_owner(db, session_id, now)
    if current is not None and not current[1]:
        return current[0]
    winner = choose_owner(session_id, [r.candidate() for r in live_instances(db, now)])
    if winner is None:
        return None
    db.execute(
        "INSERT INTO session_owners (session_id, instance_id, claimed_at, released_at)"
        " VALUES (?, ?, ?, NULL) ON CONFLICT (session_id) DO UPDATE SET"
        " instance_id = excluded.instance_id, claimed_at = excluded.claimed_at,"
        f" released_at = NULL WHERE session_owners.released_at IS NOT NULL OR {_OWNER_DEAD}",
        (session_id, winner, now, now),
    )
    owner = live_owner(db, session_id, now)
    return None if owner is None else owner[0]


def reconcile(db: Db, instance_id: str, local_sessions: Collection[str], now: float) -> Reconciled:
    """Make the claims match what lives here: claim live local sessions nobody live holds
    (measured here while the store was down, say), release this instance's claims whose
    session ended (after CLAIM_GRACE_SECONDS, so a leg being answered keeps its claim)."""
    held = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT session_id, claimed_at FROM session_owners"
            " WHERE instance_id = ? AND released_at IS NULL",
            (instance_id,),
        )
    }
    missing = [s for s in local_sessions if s not in held]
    adopted = 0
    for session_id in missing:
        adopted += db.execute(
            "INSERT INTO session_owners (session_id, instance_id, claimed_at, released_at)"
            " VALUES (?, ?, ?, NULL) ON CONFLICT (session_id) DO UPDATE SET"
            " instance_id = excluded.instance_id, claimed_at = excluded.claimed_at,"
            f" released_at = NULL WHERE session_owners.released_at IS NOT NULL OR {_OWNER_DEAD}",
            (session_id, instance_id, now, now),
        ).rowcount
    ended = [
        s for s, at in held.items() if s not in local_sessions and at < now - CLAIM_GRACE_SECONDS
    ]
    released = 0
    for session_id in ended:
        released += db.execute(
            "UPDATE session_owners SET released_at = ?"
            " WHERE session_id = ? AND instance_id = ? AND released_at IS NULL",
            (now, session_id, instance_id),
        ).rowcount
    return Reconciled(adopted, released)


def remove_instance(db: Db, instance_id: str) -> None:
    """A clean exit: the instance and its claims are gone at once (not after a lease)."""
    db.execute("DELETE FROM session_owners WHERE instance_id = ?", (instance_id,))
    db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))


def forget_stale(db: Db, now: float) -> None:
    """Delete claims released long ago, and instances (with their claims) gone long ago."""
    db.execute("DELETE FROM session_owners WHERE released_at < ?", (now - RELEASED_KEEP_SECONDS,))
    db.execute(f"DELETE FROM session_owners WHERE {_OWNER_DEAD}", (now - FORGET_SECONDS,))
    db.execute("DELETE FROM instances WHERE lease_until < ?", (now - FORGET_SECONDS,))


def mark_interrupted(db: Db, now: float, *, starting_instance: str = "") -> int:
    """End, at their last checkpoint, open reports no live instance answers for: no
    live instance claims the session, and its last checkpoint is older than a lease (a
    session a live instance has just started, and not yet claimed, is left alone).

    `starting_instance`: the instance running this at its start; claims under its id are
    its previous run's (a restart with a stable id comes back within its old lease).
    """
    return db.execute(
        "UPDATE reports SET end_reason = 'interrupted', ended_at = checkpoint_at"
        " WHERE ended_at IS NULL AND checkpoint_at < ? AND NOT EXISTS (SELECT 1"
        " FROM session_owners o JOIN instances i ON i.instance_id = o.instance_id"
        " WHERE o.session_id = reports.session_id AND i.lease_until > ?"
        " AND i.instance_id <> ?)",
        (now - LEASE_SECONDS, now, starting_instance),
    ).rowcount
