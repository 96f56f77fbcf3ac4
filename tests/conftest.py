"""Shared fixtures: a real qualmon server on loopback, tokens, and condition waits."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from prometheus_client import CollectorRegistry

from qualmon.config import Settings
from qualmon.core.quantiles import percentile
from qualmon.l10n.catalogs import Catalogs
from qualmon.service.app import PrivateAccessLogger, create_app
from qualmon.service.auth import issue_token
from qualmon.service.keys import sessions_key
from qualmon.service.metrics import QualmonMetrics
from qualmon.sessions.registry import SessionRegistry
from qualmon.sim.corpus_fixtures import Corpus
from qualmon.sim.speech_sources import SourcesUnavailable, fetch_speech_sources

from .backends import Backend
from .fakes import FakeClock, RecordingObserver, RecordingWarningObserver
from .pg import Cluster, cluster_or_skip
from .refusals import REFUSAL_BUDGET_SECONDS, REFUSAL_SECONDS

SECRET = "test-secret-" + "x" * 24

# Property-based tests (`test_fuzz_*.py`, marker `fuzz`; tests/fuzzing.py). `make test` runs
# the "test" profile: the same examples on every run (derandomized, no example database) and
# no deadline, since this machine has slow minutes and tests never assert on wall time.
# `make fuzz` runs "fuzz" (HYPOTHESIS_PROFILE=fuzz): 10,000 random examples per target
# (QUALMON_FUZZ_EXAMPLES changes that), failures kept in .hypothesis/ to replay.
_FIXTURES_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
"Endpoint targets share one service between examples on purpose; some examples are big."
hypothesis_settings.register_profile(
    "test",
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_FIXTURES_SHARED,
)
hypothesis_settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("QUALMON_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=_FIXTURES_SHARED,
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "test"))


async def wait_for(
    condition: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll until condition() is truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Service:
    """A running qualmon app on a random loopback port."""

    app: web.Application
    url: str
    metrics: QualmonMetrics
    http: aiohttp.ClientSession

    @property
    def sessions(self) -> SessionRegistry:
        return self.app[sessions_key]

    @property
    def whip_url(self) -> str:
        return self.url + "/whip"

    def token(
        self, scope: str, session: str | None = None, role: str | None = None, ttl: int = 600
    ) -> str:
        return issue_token(SECRET, scope=scope, session=session, role=role, ttl_seconds=ttl)

    def auth(
        self, scope: str, session: str | None = None, role: str | None = None
    ) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.token(scope, session, role)}

    async def session_json(self, session_id: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.url}/v1/sessions/{session_id}", headers=self.auth("admin")
        ) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def metrics_text(self) -> str:
        async with self.http.get(self.url + "/metrics") as r:
            assert r.status == 200
            return await r.text()


def make_settings(**overrides: Any) -> Settings:
    base = Settings(secret=SECRET, ice_addresses=("127.0.0.1",), db_path=":memory:")
    return replace(base, **overrides)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    """The realistic speech corpus (fetched once); skipped, with the reason, where the
    recordings cannot be had (no apt, offline, no package lists)."""
    try:
        root = fetch_speech_sources()
    except SourcesUnavailable as exc:
        pytest.skip(str(exc))
    return Corpus(root)


@pytest.fixture
def clock() -> FakeClock:
    """A monotonic clock that moves only when told (`clock.wall` is a linked wall clock)."""
    return FakeClock()


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def warning_observer() -> RecordingWarningObserver:
    return RecordingWarningObserver()


@asynccontextmanager
async def run_service(
    settings: Settings,
    *,
    middlewares: Sequence[Any] = (),
    port: int = 0,
    catalogs: Catalogs | None = None,
) -> AsyncIterator[Service]:
    """A real app on a random loopback port with a fresh metrics registry; `middlewares`
    run outside the app's own (the fuzz tests time refusals with one); `catalogs` adds
    locales (the pseudo-locale)."""
    metrics = QualmonMetrics(CollectorRegistry())
    app = create_app(settings, metrics=metrics, catalogs=catalogs)
    for index, middleware in enumerate(middlewares):
        app.middlewares.insert(index, middleware)
    # The access logger `qualmon serve` uses: no client address, no query string.
    runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http:
            yield Service(app=app, url=f"http://127.0.0.1:{port}", metrics=metrics, http=http)
    finally:
        await runner.cleanup()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with run_service(settings) as running:
        yield running


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every test must leave no task of its own running."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()

    def leftovers() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]

    deadline = time.monotonic() + 5.0
    while leftovers() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    left = leftovers()
    assert not left, f"leaked tasks: {[t.get_coro() for t in left]}"


@pytest.fixture
async def publishers() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start WHIP publishers; all are stopped (closed without DELETE if still up) at the end."""
    from qualmon.sim.publisher import WhipPublisher

    started: list[WhipPublisher] = []

    async def start(service: Service, session: str, role: str, **kwargs: Any) -> WhipPublisher:
        publisher = WhipPublisher(
            url=service.whip_url, token=service.token("publish", session, role), **kwargs
        )
        started.append(publisher)
        await publisher.start()
        return publisher

    yield start
    for publisher in started:
        await publisher.stop(delete=False)


@asynccontextmanager
async def serve_page(html: str) -> AsyncIterator[str]:
    """A platform's page on its own loopback origin (getUserMedia needs http, not about:)."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    # This machine has no network: without these Chromium keeps dialling out.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
"Flags for Debian's chromium under Playwright (executable_path = `which chromium`)."
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
"Screenshots taken by browser tests (gitignored)."


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the speech corpus are marked `corpus`: `make test-fast` leaves them out."""
    for item in items:
        if "corpus" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.corpus)


def _all_refusals() -> list[float]:
    return [seconds for by_route in REFUSAL_SECONDS.values() for seconds in by_route]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """`make fuzz`: fail the run when the p99 of the refusals' handling time is over budget."""
    refusals = _all_refusals()
    if refusals and percentile(refusals, 0.99) > REFUSAL_BUDGET_SECONDS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """`make fuzz`: how long the service took to refuse bad input (server-side), in all and
    by route."""
    refusals = _all_refusals()
    if not refusals:
        return

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label}: {len(values)} refusals, p50 {percentile(values, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.2f} ms, max {max(values) * 1000:.2f} ms"
        )

    p99 = percentile(refusals, 0.99)
    verdict = "ok" if p99 <= REFUSAL_BUDGET_SECONDS else "OVER BUDGET"
    terminalreporter.write_sep("-", "refusal latency (server-side, 4xx answers)")
    terminalreporter.write_line(
        line("all", refusals) + f" (budget p99 < {REFUSAL_BUDGET_SECONDS * 1000:.0f} ms: {verdict})"
    )
    for route, values in sorted(REFUSAL_SECONDS.items()):
        terminalreporter.write_line("  " + line(route, values))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole run, made on first use."""
    with cluster_or_skip() as cluster:
        yield cluster


_databases = itertools.count()


@pytest.fixture
def pg_dsn(pg_cluster: Cluster) -> str:
    """A fresh, empty database in the test cluster: its URL (with a password)."""
    return pg_cluster.create_database(f"t{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A report store of each kind, empty: a SQLite file, a PostgreSQL database."""
    if request.param == "postgresql":
        return Backend("postgresql", request.getfixturevalue("pg_dsn"))
    return Backend("sqlite", str(tmp_path / "reports.db"))
