"""This instance in the cluster: its row in the store (refreshed every 2 s, a 6 s lease),
its state, and who owns which session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..reports.async_store import AsyncReportStore
from ..reports.faults import FaultLog, StoreUnavailable
from ..reports.sql_cluster import (
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    InstanceRecord,
    InstanceState,
)
from ..reports.sql_store import BaseReportStore
from .owners import Owner

log = logging.getLogger(__name__)

SWEEP_EVERY_BEATS = 5
"Every 10 s a live instance marks interrupted the open reports no live instance answers for."
LEAVE_SECONDS = 1.0
"At exit, deleting this instance's row waits at most this long (else its lease runs out)."
MAX_CACHED_OWNERS = 10_000
"Owners remembered between store look-ups (each valid until its lease as then known)."


class Membership:
    """Registers this instance in the store and answers `owner_of` (a `SessionOwners`).

    The store is asked on its own thread (`AsyncReportStore.run`); when it cannot answer,
    the session is measured here: measuring never stops because the store is down, only
    affinity degrades (counted in `qualmon_cluster_local_fallbacks_total`).
    """

    def __init__(
        self,
        store: AsyncReportStore,
        *,
        instance_id: str,
        advertise_url: str,
        capacity_legs: int,
        live_legs: Callable[[], int],
        local_sessions: Callable[[], Collection[str]],
        registry: CollectorRegistry,
        is_local: Callable[[str], bool] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`live_legs` and `local_sessions` read the registry: its live leg count and the
        ids of its live sessions (each heartbeat); `is_local` answers for one session without
        listing them all (each request; default: look in `local_sessions()`)."""
        self.instance_id = instance_id
        self.advertise_url = advertise_url
        self._store = store
        self._capacity_legs = capacity_legs
        self._live_legs = live_legs
        self._local_sessions = local_sessions
        self._is_local = is_local or (lambda session_id: session_id in local_sessions())
        self._wall_clock = wall_clock
        self._state: InstanceState = "serving"
        self._started_at = wall_clock()
        self._live: tuple[InstanceRecord, ...] = ()
        self._cache: dict[str, InstanceRecord] = {}
        self._task: asyncio.Task[None] | None = None
        self._leaving: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        self._beats = 0
        self._fault_log = FaultLog()
        self._fallbacks = Counter(
            "qualmon_cluster_local_fallbacks_total",
            "Sessions handled here because the store could not say who owns them.",
            registry=registry,
        )
        self._heartbeat_failures = Counter(
            "qualmon_cluster_heartbeat_failures_total",
            "Heartbeats that could not reach the store (three in a row: the lease runs out).",
            registry=registry,
        )
        self._instances = Gauge(
            "qualmon_cluster_instances",
            "Live instances this one saw at its last heartbeat (itself included).",
            registry=registry,
        )

    # -- state ---------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._state == "draining"

    def set_draining(self) -> None:
        """Take no new session: rendezvous leaves this instance out from the next beat
        (sent at once); sessions it owns stay here."""
        self._state = "draining"
        self._beat_now.set()

    def live_instances(self) -> tuple[InstanceRecord, ...]:
        """The live instances as of the last successful heartbeat, by id."""
        return self._live

    async def instances(self) -> tuple[Owner, ...]:
        """Every live instance as of the last heartbeat, this one included (`local`); just
        this one before the first beat answered. Never raises: it reads no store."""
        live = tuple(self._owner(record) for record in self._live)
        if not any(owner.local for owner in live):
            live += (self._self_owner(),)
        return live

    def _self_owner(self) -> Owner:
        return Owner(self.instance_id, self.advertise_url, local=True)

    # -- owners ----------------------------------------------------------------------

    async def owner_of(self, session_id: str, *, claim: bool) -> Owner | None:
        """The session's owner (see `SessionOwners`): live here → this instance, without
        asking the store; else a live owner's claim; else, with `claim`, the instance the
        store's atomic claim chose (every racing instance gets the same one)."""
        if self._is_local(session_id):
            return self._self_owner()
        now = self._wall_clock()
        cached = self._cache.get(session_id)
        if cached is not None and cached.lease_until > now:
            return self._owner(cached)

        def ask(store: BaseReportStore) -> InstanceRecord | None:
            return store.session_owner(session_id, now=now, claim=claim)

        try:
            found = await self._store.run_cluster(ask)
        except StoreUnavailable as exc:
            self._fallbacks.inc()
            self._failed(exc.reason)
            return self._self_owner()
        if found is None:
            return None
        if claim:
            # A claimed owner keeps the session for its lease; a lookup may name a
            # released claim, which the next claim may move: not remembered.
            if len(self._cache) >= MAX_CACHED_OWNERS:
                self._cache.clear()
            self._cache[session_id] = found
        return self._owner(found)

    def _owner(self, record: InstanceRecord) -> Owner:
        return Owner(
            record.instance_id, record.advertise_url, local=record.instance_id == self.instance_id
        )

    # -- heartbeat -------------------------------------------------------------------

    async def beat(self) -> bool:
        """Refresh this instance's row and claims now; False if the store refused."""
        now = self._wall_clock()
        record = InstanceRecord(
            instance_id=self.instance_id,
            advertise_url=self.advertise_url,
            state=self._state,
            capacity_legs=self._capacity_legs,
            live_legs=self._live_legs(),
            started_at=self._started_at,
            lease_until=now + LEASE_SECONDS,
        )
        local = frozenset(self._local_sessions())
        sweep = self._beats % SWEEP_EVERY_BEATS == 0
        self._beats += 1

        def refresh(store: BaseReportStore) -> tuple[list[InstanceRecord], int]:
            live, _ = store.heartbeat(record, local_sessions=local, now=now)
            return live, store.sweep(now) if sweep else 0

        try:
            live, interrupted = await self._store.run_cluster(refresh)
        except StoreUnavailable as exc:
            self._heartbeat_failures.inc()
            self._failed(exc.reason)
            return False
        if self._fault_log.recovered():
            log.warning("cluster store reachable again: heartbeats and claims resume")
        self._live = tuple(live)
        self._instances.set(len(live))
        self._cache = {s: r for s, r in self._cache.items() if r.lease_until > now}
        if interrupted:
            log.warning(
                "%d report(s) left open by an instance that is gone marked interrupted",
                interrupted,
            )
        return True

    def _failed(self, reason: str) -> None:
        """At most one line a minute while the store refuses the cluster's calls."""
        line = self._fault_log.failed(time.monotonic())
        if line is not None:
            log.error(
                "cluster store %s (%s): sessions are measured where their requests land and"
                " this instance's lease runs out after %g s (%d failure(s) since the last line)",
                "unreachable" if line.first else "still unreachable",
                reason,
                LEASE_SECONDS,
                line.failures,
            )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), HEARTBEAT_SECONDS)
            self._beat_now.clear()
            await self.beat()

    async def start(self) -> None:
        """Register (a first heartbeat, awaited) and keep refreshing every 2 s."""
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="qualmon-cluster-heartbeat")

    def leave(self) -> None:
        """Leave the cluster (shutdown begins): heartbeats stop and this instance's row and
        claims are deleted in the background, beside the reports being saved (others need
        not wait out the lease)."""
        if self._leaving is not None:
            return
        heartbeat, self._task = self._task, None
        if heartbeat is not None:
            heartbeat.cancel()
        self._leaving = asyncio.create_task(self._leave(heartbeat), name="qualmon-cluster-leave")

    async def _leave(self, heartbeat: asyncio.Task[None] | None) -> None:
        if heartbeat is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        instance_id = self.instance_id
        with contextlib.suppress(StoreUnavailable):
            await self._store.run_cluster(lambda s: s.remove_instance(instance_id))

    async def stop(self, *, timeout_seconds: float = LEAVE_SECONDS) -> None:
        """Leave (if not yet) and wait for it at most `timeout_seconds`: a store that
        refuses or hangs lets the lease run out instead."""
        self.leave()
        leaving = self._leaving
        if leaving is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(leaving), timeout_seconds)
        except TimeoutError:
            leaving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leaving
