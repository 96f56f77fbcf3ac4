"""The membership inside the app: registered while it runs, the instance named in the
session JSON, /readyz while draining, gone from the store after a clean exit."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import psycopg

from qualmon.cluster.owners import Owner
from qualmon.service.keys import limiter_key, membership_key, owners_key

from ..backends import Backend
from ..conftest import make_settings, run_service
from ..reportdata import checkpoint
from ..service.test_probe_ingest import post, sample


async def test_the_app_is_a_member_while_it_runs(backend: Backend) -> None:
    settings = make_settings(
        db_path=backend.target, instance_id="qm-test.0", advertise_url="http://qm-test:8080"
    )
    async with run_service(settings) as service:
        rows = backend.rows(
            "SELECT instance_id, advertise_url, state, capacity_legs FROM instances"
        )
        assert rows == [("qm-test.0", "http://qm-test:8080", "serving", settings.max_legs)]
        assert service.app[owners_key] is service.app[membership_key]

        service.app[limiter_key].min_interval_seconds = 0.0
        token = service.token("publish", "p1", "client")
        for i in range(2):
            status, text, _ = await post(service, "p1", sample(i), token=token)
            assert status == 204, text
        doc = await service.session_json("p1")
        assert doc["instance"] == "qm-test.0"
        async with service.http.get(
            service.url + "/v1/sessions", headers=service.auth("admin")
        ) as r:
            assert [s["instance"] for s in (await r.json())["sessions"]] == ["qm-test.0"]
        owner = await service.app[owners_key].owner_of("p1", claim=False)
        assert owner == Owner("qm-test.0", "http://qm-test:8080", local=True)

        async with service.http.get(service.url + "/readyz") as r:
            assert (r.status, await r.text()) == (200, "ready\n")
        service.app[membership_key].set_draining()
        async with service.http.get(service.url + "/readyz") as r:
            assert (r.status, await r.text()) == (503, "draining\n")
    assert backend.rows("SELECT count(*) FROM instances") == [(0,)]
    assert backend.rows("SELECT count(*) FROM session_owners") == [(0,)]


def execute(backend: Backend, sql: str) -> None:
    """A write as another process would make it, committed."""
    if backend.name == "sqlite":
        with contextlib.closing(sqlite3.connect(backend.target)) as db, db:
            db.execute(sql)
        return
    with psycopg.connect(backend.target, autocommit=True) as conn:
        conn.execute(sql)


async def test_an_instance_starting_leaves_live_instances_reports_open(backend: Backend) -> None:
    """Two apps on one store: the second one's start marks interrupted the report nobody
    answers for, never the first one's live session (claimed by its heartbeat), even with
    its checkpoint made to look old."""
    seed = backend.open()
    seed.save(checkpoint("orphan", started_at=time.time() - 3600))
    seed.close()
    first = make_settings(db_path=backend.target, instance_id="first")
    async with run_service(first) as a:
        a.app[limiter_key].min_interval_seconds = 0.0
        token = a.token("publish", "live-on-a", "client")
        for i in range(2):
            status, text, _ = await post(a, "live-on-a", sample(i), token=token)
            assert status == 204, text
        async with a.http.get(
            a.url + "/v1/sessions/live-on-a/report", headers=a.auth("admin")
        ) as r:
            assert r.status == 200, await r.text()  # a checkpoint is in the store now
        assert await a.app[membership_key].beat()  # its claim, as every 2 s
        execute(backend, "UPDATE reports SET checkpoint_at = checkpoint_at - 600")
        second = make_settings(db_path=backend.target, instance_id="second")
        async with run_service(second):
            rows = dict(backend.rows("SELECT session_id, end_reason FROM reports"))
            assert rows == {"orphan": "interrupted", "live-on-a": None}
