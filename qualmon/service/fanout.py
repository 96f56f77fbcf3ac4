"""The cluster's session list: every instance's own page, fetched concurrently and merged.

Each instance answers the same `limit` and `cursor` with its own smallest ids after the
cursor; the smallest `limit` of their union are then the cluster's (an id in it has fewer
than `limit` ids before it anywhere, so its instance listed it), and a session listed by two
instances (ended on one, live on its new owner) is on both pages whenever it is on the
merged one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ..cluster.owners import Owner, SessionOwners
from .keys import relay_key
from .paging import encode_cursor
from .relay_client import LIST_TIMEOUT_SECONDS, RELAYED_HEADER, RelayClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One instance's page."""

    sessions: list[dict[str, Any]]
    more: bool
    "It has sessions after these (its `next` was not null)."


async def _local_list_of(
    relay: RelayClient, instance: Owner, authorization: str, query: dict[str, str]
) -> Part | None:
    """`GET /v1/sessions?scope=local` of one instance, with this page's `limit` and
    `cursor`; None if it cannot give it."""
    url = instance.base_url.rstrip("/") + "/v1/sessions"
    headers = {"Authorization": authorization, RELAYED_HEADER: relay.instance_id}
    try:
        async with relay.http.get(
            url,
            params={**query, "scope": "local"},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=LIST_TIMEOUT_SECONDS),
            # The owner may compress; this one answer is read here, not passed on.
            auto_decompress=True,
        ) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            doc = await r.json()
        sessions = doc["sessions"]
        if not isinstance(sessions, list):
            raise TypeError("sessions is not a list")
        # An instance of a release before paging answers no `next`: its list is whole.
        more = doc.get("next") is not None
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        relay.count("unreachable")
        log.warning(
            "instance %s left out of the session list (%s)",
            instance.instance_id,
            type(exc).__name__,
        )
        return None
    relay.count("relayed")
    return Part(sessions, more)


def _newer(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Of two entries for one session (ended on a dead owner's successor, live on the new
    owner), the live one, else the one that ended last."""
    return max(a, b, key=lambda doc: (doc.get("state") == "live", doc.get("ended_at") or ""))


def merge_pages(
    parts: Sequence[Part], *, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The merged page, sorted by id and cut to `limit`, and its `next` cursor."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for doc in part.sessions:
            key = doc.get("id")
            # An instance of an older release ignores the cursor: drop what came before it.
            if isinstance(key, str) and (after is None or key > after):
                merged[key] = _newer(merged[key], doc) if key in merged else doc
    ordered = [merged[key] for key in sorted(merged)]
    page = ordered[:limit]
    more = len(ordered) > limit or any(part.more for part in parts)
    return page, encode_cursor(page[-1]["id"]) if more and page else None


async def cluster_sessions(
    request: web.Request,
    owners: SessionOwners,
    local: list[dict[str, Any]],
    *,
    more: bool,
    after: str | None,
    limit: int,
) -> dict[str, Any]:
    """`{"sessions": [...], "next": cursor or null, "partial": [ids of instances that did
    not answer]}`; `local` is this instance's page (`more`: it has sessions after it)."""
    relay = request.app[relay_key]
    authorization = request.headers.get("Authorization") or "Bearer " + request.query["token"]
    query = {"limit": str(limit)}
    if after is not None:
        query["cursor"] = encode_cursor(after)
    others = [i for i in await owners.instances() if not i.local]
    parts = await asyncio.gather(*(_local_list_of(relay, i, authorization, query) for i in others))
    answered = [Part(local, more), *(part for part in parts if part is not None)]
    sessions, cursor = merge_pages(answered, after=after, limit=limit)
    partial = sorted(i.instance_id for i, part in zip(others, parts, strict=True) if part is None)
    return {"sessions": sessions, "next": cursor, "partial": partial}
