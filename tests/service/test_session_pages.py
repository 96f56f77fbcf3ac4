"""GET /v1/sessions a page at a time, over a real server with probe-only sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from qualmon.service.keys import limiter_key
from qualmon.service.paging import DEFAULT_LIMIT, encode_cursor

from ..conftest import Service
from .test_probe_ingest import sample

IDS = [f"s{i:02}" for i in range(23)] + ["Ünïcode", "a b/c?d", "Z-last"]


@pytest.fixture
async def listed(service: Service) -> AsyncIterator[Service]:
    """The service holding a probe-only session for each of IDS (no media: cheap)."""
    service.app[limiter_key].min_interval_seconds = 0.0
    for session in IDS:
        await post_sample(service, session)
    yield service


async def post_sample(service: Service, session: str) -> None:
    async with service.http.post(
        f"{service.url}/v1/sessions/{quote(session, safe='')}/stats",
        json=sample(0),
        headers=service.auth("publish", session, "client"),
    ) as r:
        assert r.status == 204, await r.text()


async def get_page(service: Service, **params: str) -> tuple[int, Any]:
    async with service.http.get(
        service.url + "/v1/sessions", params=params, headers=service.auth("admin")
    ) as r:
        return r.status, await r.json() if r.status == 200 else await r.text()


async def walk(service: Service, **params: str) -> tuple[list[str], int]:
    """Every id listed, following `next` until null, and how many pages that took."""
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        status, doc = await get_page(service, **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200, doc
        pages += 1
        seen += [s["id"] for s in doc["sessions"]]
        cursor = doc["next"]
        if cursor is None:
            return seen, pages
        assert pages < 100, "next never became null"


@pytest.mark.parametrize("scope", ["local", "cluster"])
async def test_pages_list_every_session_once_in_id_order(listed: Service, scope: str) -> None:
    seen, pages = await walk(listed, limit="5", scope=scope)
    assert seen == sorted(IDS)
    assert pages == 6  # 26 sessions, 5 a page


async def test_default_page_and_last_page(listed: Service) -> None:
    """Without parameters: the first DEFAULT_LIMIT sessions (all 26 here), `next` null;
    a page whose limit takes exactly the rest ends the walk too."""
    status, doc = await get_page(listed)
    assert status == 200
    assert len(IDS) < DEFAULT_LIMIT
    assert [s["id"] for s in doc["sessions"]] == sorted(IDS)
    assert doc["next"] is None and doc["partial"] == []
    status, doc = await get_page(listed, limit=str(len(IDS)), scope="local")
    assert status == 200 and len(doc["sessions"]) == len(IDS) and doc["next"] is None
    assert "partial" not in doc


async def test_a_cursor_lists_what_comes_after_it(listed: Service) -> None:
    """Sessions that start between pages are listed if their id sorts after the cursor;
    the cursor needs no state on the server (here: made by hand from an id)."""
    status, first = await get_page(listed, limit="3")
    assert status == 200
    assert [s["id"] for s in first["sessions"]] == sorted(IDS)[:3]
    await post_sample(listed, "a-before")  # sorts before the cursor: not on later pages
    await post_sample(listed, "zz-after")
    rest, _ = await walk_from(listed, first["next"])
    assert rest == sorted([*IDS, "zz-after"])[3:]  # code-point order: "Ü" after "zz"
    assert "a-before" not in rest
    status, doc = await get_page(listed, cursor=encode_cursor("s20"), limit="2")
    assert [s["id"] for s in doc["sessions"]] == ["s21", "s22"]


async def walk_from(service: Service, cursor: str) -> tuple[list[str], int]:
    seen, pages = [], 0
    next_cursor: str | None = cursor
    while next_cursor is not None:
        status, doc = await get_page(service, cursor=next_cursor, limit="4")
        assert status == 200, doc
        seen += [s["id"] for s in doc["sessions"]]
        next_cursor, pages = doc["next"], pages + 1
    return seen, pages


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"limit": "0"}, "limit must be an integer 1..1000"),
        ({"limit": "1001"}, "limit must be an integer 1..1000"),
        ({"limit": "-3"}, "limit must be an integer 1..1000"),
        ({"limit": "ten"}, "limit must be an integer 1..1000"),
        ({"limit": "١٠"}, "limit must be an integer 1..1000"),
        ({"cursor": "not a cursor"}, "cursor is not one this API gave out"),
        ({"cursor": "YR"}, "cursor is not one this API gave out"),
        ({"cursor": "//8", "scope": "local"}, "cursor is not one this API gave out"),
        ({"scope": "nowhere", "limit": "5"}, "scope must be one of cluster, local"),
    ],
)
async def test_bad_limit_or_cursor_is_a_one_line_400(
    listed: Service, params: dict[str, str], reason: str
) -> None:
    status, text = await get_page(listed, **params)
    assert status == 400
    assert text.startswith(reason) and text.count("\n") == 1
    status, doc = await get_page(listed, limit="1000")
    assert len(doc["sessions"]) == len(IDS)  # nothing changed


async def test_pages_are_admin_only(listed: Service) -> None:
    async with listed.http.get(
        listed.url + "/v1/sessions",
        params={"limit": "5"},
        headers=listed.auth("watch", IDS[0]),
    ) as r:
        assert r.status == 403


async def test_list_and_metrics_say_what_they_cost_here(listed: Service) -> None:
    """`Server-Timing: app;dur=<ms>` on the session list and /metrics: the time spent in this
    instance, told apart from the network and the wait for the event loop."""
    for path, headers in (("/v1/sessions", listed.auth("admin")), ("/metrics", {})):
        async with listed.http.get(listed.url + path, headers=headers) as r:
            assert r.status == 200
            name, _, duration = r.headers["Server-Timing"].partition(";dur=")
            assert name == "app" and 0 <= float(duration) < 60_000
