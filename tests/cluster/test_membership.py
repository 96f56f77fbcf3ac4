"""Three memberships over one store (SQLite file or PostgreSQL database), each with its own
store thread and connection, as three instances would have."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from qualmon.cluster.membership import Membership
from qualmon.cluster.owners import Owner, SessionOwners
from qualmon.core.rendezvous import choose_owner
from qualmon.reports.async_store import AsyncReportStore
from qualmon.reports.sql_cluster import LEASE_SECONDS

from ..backends import Backend

CAPACITY = 10


@dataclass
class Instance:
    """One membership and the registry state it reads."""

    membership: Membership
    store: AsyncReportStore
    registry: CollectorRegistry
    legs: int = 0
    local: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.membership.instance_id

    def sample(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


class WallClock:
    """Wall time that tests move forward (leases without waiting them out)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@contextlib.asynccontextmanager
async def instance(backend: Backend, name: str, wall: WallClock) -> AsyncIterator[Instance]:
    store = AsyncReportStore(backend.target, instance_id=name)
    await store.open()
    registry = CollectorRegistry()
    holder: list[Instance] = []
    membership = Membership(
        store,
        instance_id=name,
        advertise_url=f"http://{name}.qm:8080",
        capacity_legs=CAPACITY,
        live_legs=lambda: holder[0].legs,
        local_sessions=lambda: holder[0].local,
        registry=registry,
        wall_clock=wall,
    )
    holder.append(Instance(membership, store, registry))
    try:
        yield holder[0]
    finally:
        await membership.stop()
        await store.close()


@pytest.fixture
async def three(backend: Backend, wall: WallClock) -> AsyncIterator[list[Instance]]:
    async with (
        instance(backend, "a", wall) as a,
        instance(backend, "b", wall) as b,
        instance(backend, "c", wall) as c,
    ):
        yield [a, b, c]


async def beat_all(instances: list[Instance]) -> None:
    for each in instances:
        assert await each.membership.beat()


def test_membership_is_a_session_owners() -> None:
    """The service types the relay's collaborator as the protocol; Membership fits it."""
    owners: type[SessionOwners] = Membership
    assert owners is Membership


async def test_each_sees_the_others(three: list[Instance]) -> None:
    await beat_all(three)
    await beat_all(three)
    for each in three:
        assert [r.instance_id for r in each.membership.live_instances()] == ["a", "b", "c"]
        assert each.sample("qualmon_cluster_instances") == 3


async def test_a_stopped_instance_is_gone_at_once_a_dead_one_after_its_lease(
    backend: Backend, wall: WallClock, three: list[Instance]
) -> None:
    """A clean stop removes the row; one that stops beating (killed) stays for its lease
    and is gone after it."""
    a, _b, c = three
    await beat_all(three)
    await c.membership.stop()
    assert await a.membership.beat()
    assert [r.instance_id for r in a.membership.live_instances()] == ["a", "b"]
    wall.now += LEASE_SECONDS - 0.5  # b misses its beats from here on
    assert await a.membership.beat()
    assert [r.instance_id for r in a.membership.live_instances()] == ["a", "b"]
    wall.now += 1.0
    assert await a.membership.beat()
    assert [r.instance_id for r in a.membership.live_instances()] == ["a"]


async def test_claims_follow_the_rendezvous_choice_and_agree(three: list[Instance]) -> None:
    """Whichever instance asks, a session gets one owner: the rendezvous choice; the
    owner sees itself as local, the others as remote with its URL."""
    await beat_all(three)
    candidates = [r.candidate() for r in three[-1].membership.live_instances()]  # saw all
    for i in range(20):
        session_id = f"s{i}"
        asker = three[i % 3]
        owner = await asker.membership.owner_of(session_id, claim=True)
        assert owner is not None and owner.instance_id == choose_owner(session_id, candidates)
        assert owner.local == (owner.instance_id == asker.id)
        assert owner.base_url == f"http://{owner.instance_id}.qm:8080"
        for other in three:
            seen = await other.membership.owner_of(session_id, claim=False)
            assert seen == Owner(owner.instance_id, owner.base_url, other.id == owner.instance_id)


async def test_a_live_local_session_needs_no_store(three: list[Instance]) -> None:
    """Live here: this instance, even with no claim and the store closed."""
    a = three[0]
    a.local.add("here")
    await a.store.close()
    assert await a.membership.owner_of("here", claim=True) == Owner("a", "http://a.qm:8080", True)
    assert a.sample("qualmon_cluster_local_fallbacks_total") == 0


async def test_unclaimed_and_not_claiming_is_none(three: list[Instance]) -> None:
    await beat_all(three)
    assert await three[0].membership.owner_of("nobody", claim=False) is None


async def test_a_draining_instance_gets_no_new_claims(three: list[Instance]) -> None:
    """Its claims stay its own; new sessions go to the others; /readyz reads `draining`."""
    a, b, c = three
    await beat_all(three)
    owned = [f"s{i}" for i in range(60)]
    before = {s: await b.membership.owner_of(s, claim=True) for s in owned}
    mine = [s for s, o in before.items() if o is not None and o.instance_id == "a"]
    assert mine
    a.membership.set_draining()
    assert a.membership.draining
    assert await a.membership.beat()
    fresh = [await c.membership.owner_of(f"new{i}", claim=True) for i in range(60)]
    assert {o.instance_id for o in fresh if o is not None} == {"b", "c"}
    for s in mine:
        assert (await c.membership.owner_of(s, claim=True)) == Owner("a", "http://a.qm:8080", False)


async def test_capacity_is_respected(three: list[Instance]) -> None:
    """An instance at its leg cap gets no new claim; with room again it does."""
    a, b, _c = three
    a.legs = CAPACITY
    await beat_all(three)
    fresh = [await b.membership.owner_of(f"x{i}", claim=True) for i in range(60)]
    assert "a" not in {o.instance_id for o in fresh if o is not None}
    a.legs = CAPACITY - 1
    await beat_all(three)
    fresh = [await b.membership.owner_of(f"y{i}", claim=True) for i in range(60)]
    assert "a" in {o.instance_id for o in fresh if o is not None}


async def test_twenty_concurrent_claims_from_three_memberships_make_one_owner(
    backend: Backend, three: list[Instance]
) -> None:
    """20 claims of one session at once, spread over the three (each on its own store
    connection and thread): one owner, the same answer everywhere, one row."""
    await beat_all(three)
    answers = await asyncio.gather(
        *(three[i % 3].membership.owner_of("contended", claim=True) for i in range(20))
    )
    ids = {o.instance_id for o in answers if o is not None}
    assert len(ids) == 1 and None not in answers
    rows = backend.rows("SELECT instance_id FROM session_owners WHERE session_id = 'contended'")
    assert rows == [(ids.pop(),)]


@contextlib.contextmanager
def store_locked(backend: Backend) -> Iterator[None]:
    """Another process holds the write lock (SQLite) or a table lock (PostgreSQL): the
    store cannot answer a claim until it lets go."""
    if backend.name == "sqlite":
        with contextlib.closing(sqlite3.connect(backend.target, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                db.execute("ROLLBACK")
        return
    with psycopg.connect(backend.target) as conn:
        conn.execute("LOCK TABLE session_owners, instances IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


async def test_a_store_that_cannot_answer_means_local_and_counted(
    backend: Backend, three: list[Instance], caplog: pytest.LogCaptureFixture
) -> None:
    """Measuring never waits for the store: a claim it cannot answer is this instance's,
    counted (no session id in the metric); heartbeats that fail are counted too; one line
    says so, one says it is over."""
    a = three[0]
    await beat_all(three)
    await a.store.run_cluster(lambda s: s.set_busy_timeout(0.2))  # fail fast
    with store_locked(backend):
        owner = await a.membership.owner_of("during-outage", claim=True)
        assert owner == Owner("a", "http://a.qm:8080", True)
        assert a.sample("qualmon_cluster_local_fallbacks_total") == 1
        assert not await a.membership.beat()
        assert a.sample("qualmon_cluster_heartbeat_failures_total") == 1
        assert a.store.errors["cluster"] == 2
    a.local.add("during-outage")  # measured here meanwhile: the next beat claims it
    assert await a.membership.beat()
    assert await three[1].membership.owner_of("during-outage", claim=True) == Owner(
        "a", "http://a.qm:8080", False
    )
    text = "\n".join(str(m) for m in a.registry.collect())
    assert "during-outage" not in text
    lines = [r.getMessage() for r in caplog.records if r.name == "qualmon.cluster.membership"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("cluster store unreachable (locked by another process)")
    assert "during-outage" not in lines[0] and "reachable again" in lines[1]


async def test_start_registers_and_stop_leaves(backend: Backend, wall: WallClock) -> None:
    """start() registers at once and keeps a heartbeat task; stop() ends it and removes
    the row (others need not wait out the lease)."""
    async with instance(backend, "solo", wall) as solo:
        await solo.membership.start()
        assert backend.rows("SELECT instance_id, state FROM instances") == [("solo", "serving")]
        solo.membership.set_draining()

        async def drained() -> bool:
            return backend.rows("SELECT state FROM instances") == [("draining",)]

        deadline = time.monotonic() + 10
        while not await drained():
            assert time.monotonic() < deadline, "the draining state never reached the store"
            await asyncio.sleep(0.05)
        await solo.membership.stop()
        assert backend.rows("SELECT count(*) FROM instances") == [(0,)]
