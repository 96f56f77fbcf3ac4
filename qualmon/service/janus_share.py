"""Janus' event handler posts to one address; in a cluster every instance needs its events.

Room events (who joined, who publishes which stream) are what each instance maps Janus'
handles with, and a participant's media statistics matter to the instance its session's
attach lives on, which may be any. So an instance that accepted a post passes the same body
on to every other live instance, in the background (Janus waits for no one and retries
nothing), marked `Qualmon-Relayed` so it goes no further. Each instance uses what concerns
its own attaches and counts the rest as ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from ..cluster.owners import Owner, SessionOwners
from .keys import owners_key, relay_key
from .relay_client import RELAYED_HEADER, RelayClient

log = logging.getLogger(__name__)

PATH = "/v1/integrations/janus/events"
SHARE_TIMEOUT_SECONDS = 5.0
MAX_SHARING = 64
"Posts being passed on at once; beyond that a post is not shared (counted unreachable)."


class JanusShare:
    """Passes accepted event posts on to the other instances of the cluster."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def share(self, request: web.Request, body: bytes) -> None:
        """Pass `body` on unless it was passed here by another instance or there is no
        cluster; returns at once."""
        owners = request.app.get(owners_key)
        relay = request.app.get(relay_key)
        if owners is None or relay is None or RELAYED_HEADER in request.headers:
            return
        if len(self._tasks) >= MAX_SHARING:
            relay.count("unreachable")
            return
        authorization = request.headers.get("Authorization", "")
        task = asyncio.create_task(self._share(owners, relay, body, authorization))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _share(
        self,
        owners: SessionOwners,
        relay: RelayClient,
        body: bytes,
        authorization: str,
    ) -> None:
        others = [o for o in await owners.instances() if not o.local]
        await asyncio.gather(*(self._post(relay, o, body, authorization) for o in others))

    async def _post(
        self, relay: RelayClient, owner: Owner, body: bytes, authorization: str
    ) -> None:
        headers = {
            "Authorization": authorization,
            "Content-Type": "application/json",
            RELAYED_HEADER: relay.instance_id,
        }
        try:
            async with relay.http.post(
                owner.base_url.rstrip("/") + PATH,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=SHARE_TIMEOUT_SECONDS),
            ) as r:
                await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            relay.count("unreachable")
            log.warning(
                "instance %s unreachable for Janus events (%s)",
                owner.instance_id,
                type(exc).__name__,
            )
            return
        relay.count("relayed")

    async def close(self) -> None:
        """Let posts under way finish (they are bounded by their timeout)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHARE_TIMEOUT_SECONDS + 1)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def running(share: JanusShare) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: posts under way finish before the relay's client closes."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        yield
        await share.close()

    return context
