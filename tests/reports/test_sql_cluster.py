"""The cluster's tables, SQLite and PostgreSQL alike: leases, atomic claims, release, and
which open reports another instance may mark interrupted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from qualmon.core.rendezvous import choose_owner
from qualmon.reports.sql_cluster import (
    CLAIM_GRACE_SECONDS,
    FORGET_SECONDS,
    LEASE_SECONDS,
    RELEASED_KEEP_SECONDS,
    InstanceRecord,
)
from qualmon.reports.sql_store import BaseReportStore as Store

from ..backends import Backend
from ..reportdata import checkpoint

NOW = 1_800_000_000.0


def instance(name: str, *, now: float = NOW, **kw: object) -> InstanceRecord:
    base = InstanceRecord(
        instance_id=name,
        advertise_url=f"http://{name}.qm:8080",
        state="serving",
        capacity_legs=100,
        live_legs=0,
        started_at=now - 60,
        lease_until=now + LEASE_SECONDS,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()


def beat(store: Store, record: InstanceRecord, *sessions: str, now: float = NOW) -> None:
    store.heartbeat(record, local_sessions=frozenset(sessions), now=now)


def owner(store: Store, session_id: str, *, claim: bool, now: float = NOW) -> str | None:
    found = store.session_owner(session_id, now=now, claim=claim)
    return None if found is None else found.instance_id


def test_live_instances_are_those_whose_lease_runs(store: Store) -> None:
    """A heartbeat registers and refreshes; a lease that ran out is gone; a clean exit
    removes the row at once."""
    live, _ = store.heartbeat(instance("a"), local_sessions=(), now=NOW)
    assert [r.instance_id for r in live] == ["a"]
    beat(store, instance("b", lease_until=NOW + 1, live_legs=7, state="draining"))
    beat(store, instance("c", lease_until=NOW - 0.001))
    assert store.live_instances(NOW) == [
        instance("a"),
        instance("b", lease_until=NOW + 1, live_legs=7, state="draining"),
    ]
    assert [r.instance_id for r in store.live_instances(NOW + 2)] == ["a"]
    store.remove_instance("a")
    assert [r.instance_id for r in store.live_instances(NOW)] == ["b"]


def test_a_claim_goes_to_the_rendezvous_choice_and_sticks(store: Store) -> None:
    """The first claim picks the rendezvous winner among serving instances with room; a
    later claim or lookup returns it even when the choice would now differ."""
    records = [instance(n) for n in "abc"]
    for record in records:
        beat(store, record)
    sessions = [f"s{i}" for i in range(30)]
    expected = {s: choose_owner(s, [r.candidate() for r in records]) for s in sessions}
    assert {s: owner(store, s, claim=False) for s in sessions} == dict.fromkeys(sessions)
    assert {s: owner(store, s, claim=True) for s in sessions} == expected
    assert len(set(expected.values())) == 3
    # The winner of s0 drains: its claim holds, no new session goes to it.
    first = expected["s0"]
    assert first is not None
    beat(store, instance(first, state="draining"))
    assert owner(store, "s0", claim=True) == first
    fresh = {owner(store, f"new{i}", claim=True) for i in range(30)}
    assert first not in fresh and len(fresh) == 2


def test_full_and_draining_instances_take_no_claim(store: Store) -> None:
    beat(store, instance("a", state="draining"))
    beat(store, instance("b", live_legs=100))
    assert owner(store, "s", claim=True) is None
    beat(store, instance("c", live_legs=99))
    assert owner(store, "s", claim=True) == "c"


def test_no_live_instance_no_owner(store: Store) -> None:
    assert owner(store, "s", claim=True) is None
    beat(store, instance("a", lease_until=NOW - 1))
    assert owner(store, "s", claim=True) is None


def test_an_owner_whose_lease_ran_out_is_replaced(store: Store) -> None:
    """Past the owner's lease the claim is void: lookups say none, a claim moves it."""
    beat(store, instance("a"))
    assert owner(store, "s", claim=True) == "a"
    later = NOW + LEASE_SECONDS + 1
    beat(store, instance("b", now=later), now=later)
    assert owner(store, "s", claim=False, now=later) is None
    assert owner(store, "s", claim=True, now=later) == "b"
    beat(store, instance("a", now=later), now=later)  # a comes back: b keeps it
    assert owner(store, "s", claim=True, now=later) == "b"


def test_heartbeats_adopt_live_sessions_and_release_ended_ones(store: Store) -> None:
    """A session live here and claimed by nobody live is claimed; a claim whose session
    is no longer live here is released after the grace, and then still names its owner
    for reads while a new claim chooses afresh."""
    beat(store, instance("a"), "measured-while-store-down")
    assert owner(store, "measured-while-store-down", claim=False) == "a"
    assert owner(store, "being-answered", claim=True) == "a"
    beat(store, instance("a"))  # within the grace: kept
    assert owner(store, "being-answered", claim=True) == "a"
    later = NOW + CLAIM_GRACE_SECONDS + 1
    _, changed = store.heartbeat(instance("a", now=later), local_sessions=(), now=later)
    assert (changed.adopted, changed.released) == (0, 2)
    beat(store, instance("b", now=later), now=later)
    assert owner(store, "being-answered", claim=False, now=later) == "a"
    winner = choose_owner("being-answered", [instance(n).candidate() for n in "ab"])
    assert owner(store, "being-answered", claim=True, now=later) == winner


def test_a_session_live_on_another_live_instance_is_not_adopted(store: Store) -> None:
    beat(store, instance("a"))
    assert owner(store, "s", claim=True) == "a"
    _, changed = store.heartbeat(instance("b"), local_sessions={"s"}, now=NOW)
    assert changed.adopted == 0 and owner(store, "s", claim=False) == "a"


def test_stale_rows_are_forgotten(store: Store, backend: Backend) -> None:
    beat(store, instance("a"))
    assert owner(store, "s", claim=True) == "a"
    store.sweep(NOW + FORGET_SECONDS + LEASE_SECONDS + 1)
    assert backend.rows("SELECT count(*) FROM instances") == [(0,)]
    assert backend.rows("SELECT count(*) FROM session_owners") == [(0,)]
    beat(store, instance("b"))
    assert owner(store, "t", claim=True) == "b"
    later = NOW + CLAIM_GRACE_SECONDS + 1
    beat(store, instance("b", now=later), now=later)  # released
    store.sweep(later + RELEASED_KEEP_SECONDS + 1)
    assert backend.rows("SELECT count(*) FROM session_owners") == [(0,)]


def test_open_reports_of_live_instances_are_never_marked_interrupted(backend: Backend) -> None:
    """Two stores on one database, as two instances: the one starting marks open reports
    interrupted only where no live instance claims the session and the last checkpoint is
    older than a lease; its own id's old claims protect nothing (its previous run's)."""
    a, b = backend.open(), backend.open()
    try:
        beat(a, instance("a"), "on-a")
        beat(a, instance("gone", lease_until=NOW - 1), "on-gone", now=NOW - 10)
        beat(a, instance("b", lease_until=NOW + 3), "b-before-restart")
        for session_id, age in [
            ("on-a", 600),
            ("on-gone", 600),
            ("unclaimed-old", 600),
            ("unclaimed-fresh", 1),
            ("b-before-restart", 600),
        ]:
            # checkpoint() saves 60 s after the start: the last checkpoint is `age` old.
            a.save(checkpoint(session_id, started_at=NOW - age - 60))
        marked = b.mark_interrupted(now=NOW, starting_instance="b")
        states = {r[0]: r[1] for r in backend.rows("SELECT session_id, end_reason FROM reports")}
        assert states == {
            "on-a": None,
            "on-gone": "interrupted",
            "unclaimed-old": "interrupted",
            "unclaimed-fresh": None,
            "b-before-restart": "interrupted",
        }
        assert marked == 3
        # A running instance's sweep counts its own claims (a is live: still untouched).
        assert a.sweep(NOW + 1) == 0
        assert b.sweep(NOW + LEASE_SECONDS + 10) == 2  # a's lease and fresh's guard ran out
    finally:
        a.close()
        b.close()


def test_twenty_concurrent_claims_make_one_owner(backend: Backend) -> None:
    """20 threads, each with its own connection (as 20 processes), claim one session at
    once over three live instances: all get the same owner, and one row exists."""
    setup = backend.open()
    for name in "abc":
        beat(setup, instance(name))
    stores = [backend.open() for _ in range(20)]
    barrier = threading.Barrier(len(stores))
    results: list[str | None] = [None] * len(stores)

    def claim(index: int) -> None:
        barrier.wait()
        results[index] = owner(stores[index], "contended", claim=True)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(set(results)) == 1 and results[0] in ("a", "b", "c")
        rows = backend.rows("SELECT instance_id FROM session_owners WHERE session_id = 'contended'")
        assert rows == [(results[0],)]
    finally:
        for opened in [setup, *stores]:
            opened.close()
