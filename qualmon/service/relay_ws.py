"""A session's WebSocket relayed to its owner: messages both ways, closes both ways."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from ..cluster.owners import Owner
from .keys import relay_key
from .relay_client import RelayClient

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
"Pings on both sides, as the owner's own socket does: a peer gone silent is noticed."
CLOSE_TIMEOUT_SECONDS = 5.0
_NOT_SENDABLE = frozenset({1005, 1006, 1015})
"Close codes that describe what happened and may not be sent in a close frame (RFC 6455)."
GOING_AWAY_ABNORMALLY = 1011


def is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _sendable(code: int | None) -> int:
    if code is None or code in _NOT_SENDABLE:
        return GOING_AWAY_ABNORMALLY  # the other side vanished: tell the client to retry
    return code


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    """Copy messages until `source` closes (its iteration ends on a close) or fails."""
    try:
        async for msg in source:
            if msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.ERROR:
                return
    except ConnectionResetError:
        return  # the sink is gone; the caller closes what is left


async def proxy(
    request: web.Request, owner: Owner, url: URL, cors: Mapping[str, str]
) -> web.StreamResponse | None:
    """Open the owner's socket first (its refusal is answered as a plain status), then the
    client's, and copy both ways until either side closes; None if the owner is unreachable."""
    relay: RelayClient = request.app[relay_key]
    headers = relay.headers_for(request.headers)
    for name in list(headers):
        if name.lower().startswith("sec-websocket-"):
            del headers[name]  # the client side makes its own handshake with the owner
    protocols = tuple(
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    )
    try:
        upstream = await relay.http.ws_connect(
            url,
            headers=headers,
            protocols=protocols,
            heartbeat=HEARTBEAT_SECONDS,
            timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_SECONDS),
        )
    except aiohttp.WSServerHandshakeError as exc:
        relay.count("relayed")
        # The owner answered without upgrading (unknown session, bad token): its status.
        refusal = web.Response(status=exc.status, text=f"{exc.message}\n")
        refusal.headers.update(cors)
        return refusal
    except (aiohttp.ClientError, TimeoutError) as exc:
        relay.count("unreachable")
        log.warning(
            "instance %s unreachable for a relayed WebSocket (%s)",
            owner.instance_id,
            type(exc).__name__,
        )
        return None
    relay.count("relayed")
    client = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, protocols=(upstream.protocol,) if upstream.protocol else ()
    )
    try:
        await client.prepare(request)
        to_client = asyncio.create_task(_pump(upstream, client))
        to_owner = asyncio.create_task(_pump(client, upstream))
        try:
            await asyncio.wait({to_client, to_owner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_client, to_owner):
                task.cancel()
            # wait(), not gather(): our own cancellation must still propagate.
            await asyncio.wait({to_client, to_owner})
    finally:
        # Whichever side closed first, the other hears the same code (or 1011 if it vanished).
        if upstream.closed:
            if client.prepared:
                await client.close(code=_sendable(upstream.close_code))
        else:
            await upstream.close(code=_sendable(client.close_code))
            if client.prepared:
                await client.close()
    return client
