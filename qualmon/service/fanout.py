"""The cluster's session list: every instance's own list, fetched concurrently and merged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from ..cluster.owners import Owner, SessionOwners
from .keys import relay_key
from .relay_client import LIST_TIMEOUT_SECONDS, RELAYED_HEADER, RelayClient

log = logging.getLogger(__name__)


async def _local_list_of(
    relay: RelayClient, instance: Owner, authorization: str
) -> list[dict[str, Any]] | None:
    """`GET /v1/sessions?scope=local` of one instance; None if it cannot give it."""
    url = instance.base_url.rstrip("/") + "/v1/sessions"
    headers = {"Authorization": authorization, RELAYED_HEADER: relay.instance_id}
    try:
        async with relay.http.get(
            url,
            params={"scope": "local"},
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
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        relay.count("unreachable")
        log.warning(
            "instance %s left out of the session list (%s)",
            instance.instance_id,
            type(exc).__name__,
        )
        return None
    relay.count("relayed")
    return sessions


def _newer(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Of two entries for one session (ended on a dead owner's successor, live on the new
    owner), the live one, else the one that ended last."""
    return max(a, b, key=lambda doc: (doc.get("state") == "live", doc.get("ended_at") or ""))


async def cluster_sessions(
    request: web.Request, owners: SessionOwners, local: list[dict[str, Any]]
) -> dict[str, Any]:
    """`{"sessions": [...], "partial": [ids of instances that did not answer]}`."""
    relay = request.app[relay_key]
    authorization = request.headers.get("Authorization") or "Bearer " + request.query["token"]
    others = [i for i in await owners.instances() if not i.local]
    parts = await asyncio.gather(*(_local_list_of(relay, i, authorization) for i in others))
    merged: dict[str, dict[str, Any]] = {}
    for doc in local + [doc for part in parts if part is not None for doc in part]:
        key = doc.get("id")
        if isinstance(key, str):
            merged[key] = _newer(merged[key], doc) if key in merged else doc
    sessions = sorted(merged.values(), key=lambda d: (str(d.get("started_at")), d["id"]))
    partial = sorted(i.instance_id for i, part in zip(others, parts, strict=True) if part is None)
    return {"sessions": sessions, "partial": partial}
