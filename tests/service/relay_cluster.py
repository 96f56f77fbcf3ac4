"""Several real qualmon apps on loopback that own sessions by a fixed map (test-only)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from qualmon.cluster.owners import Owner
from qualmon.config import Settings
from qualmon.service.app import PrivateAccessLogger, create_app
from qualmon.service.keys import limiter_key, owners_key
from qualmon.service.metrics import QualmonMetrics

from ..conftest import Service


@dataclass
class StaticOwners:
    """SessionOwners from a map shared by every instance of a test cluster: the ownership
    decision is the membership's business (another module); here it is fixed by the test.
    A session not in the map is nobody's, unless claimed: then `default` takes it."""

    me: str
    urls: dict[str, str]
    "Instance id → base URL, filled as the instances start (a dead one: a closed port)."
    owner_by_session: dict[str, str]
    default: str | None = None
    asked: list[tuple[str, bool]] = field(default_factory=list)
    "Every (session, claim) this instance asked about, in order."

    async def owner_of(self, session_id: str, *, claim: bool) -> Owner | None:
        self.asked.append((session_id, claim))
        instance = self.owner_by_session.get(session_id)
        if instance is None and claim and self.default is not None:
            instance = self.owner_by_session[session_id] = self.default
        if instance is None:
            return None
        return Owner(instance, self.urls[instance], local=instance == self.me)

    async def instances(self) -> Sequence[Owner]:
        return [Owner(i, url, local=i == self.me) for i, url in self.urls.items()]


@dataclass
class Instance(Service):
    """A Service that is one instance of a test cluster."""

    owners: StaticOwners = field(default=None)  # type: ignore[assignment]

    @property
    def instance_id(self) -> str:
        return self.owners.me


@contextlib.asynccontextmanager
async def cluster(
    settings: Settings,
    ids: Sequence[str],
    owner_by_session: dict[str, str],
    *,
    per_instance: dict[str, dict[str, object]] | None = None,
    unlimited_samples: bool = True,
) -> AsyncIterator[dict[str, Instance]]:
    """One real app per id, each on its own loopback port and with its own metrics, all
    sharing one ownership map; `per_instance` overrides settings of some."""
    urls: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        running: dict[str, Instance] = {}
        for instance_id in ids:
            own = replace(settings, **(per_instance or {}).get(instance_id, {}))  # type: ignore[arg-type]
            metrics = QualmonMetrics(CollectorRegistry())
            app = create_app(own, metrics=metrics)
            owners = StaticOwners(instance_id, urls, owner_by_session)
            app[owners_key] = owners
            runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=5.0)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls[instance_id] = f"http://127.0.0.1:{port}"
            if unlimited_samples:
                app[limiter_key].min_interval_seconds = 0.0
            running[instance_id] = Instance(
                app=app, url=urls[instance_id], metrics=metrics, http=http, owners=owners
            )
        yield running


def relay_count(instance: Service, outcome: str) -> float:
    value = instance.metrics.registry.get_sample_value(
        "qualmon_relay_requests_total", {"outcome": outcome}
    )
    return value or 0.0
