"""The relay's client to other instances: one pooled HTTP session for the app's life."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Literal

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry, Counter

RELAYED_HEADER = "Qualmon-Relayed"
"Set on every request one instance sends another: such a request is never relayed again."
CONNECT_TIMEOUT_SECONDS = 2.0
"Inside one cluster network: an owner that does not accept in 2 s is as good as down."
READ_TIMEOUT_SECONDS = 30.0
"""Longest silence from an owner, headers included: a WHIP answer takes seconds (ICE
gathering), an event stream sends a heartbeat every 5 s. No total timeout: streams last
as long as the session."""
LIST_TIMEOUT_SECONDS = 5.0
"Each instance's part of the cluster session list; a slower one is named in `partial`."
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        # Not hop-by-hop in RFC 9110, but set anew for each hop by the sending side.
        "host",
        "content-length",
    }
)
Outcome = Literal["relayed", "unreachable"]
OUTCOMES: tuple[Outcome, ...] = ("relayed", "unreachable")


def end_to_end(headers: CIMultiDictProxy[str] | Mapping[str, str]) -> CIMultiDict[str]:
    """The headers a proxy passes on (RFC 9110 §7.6.1): neither the hop-by-hop ones nor
    those a `Connection` header names."""
    named = {
        token.strip().lower()
        for value in _all(headers, "Connection")
        for token in value.split(",")
        if token.strip()
    }
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in HOP_BY_HOP and lowered not in named:
            kept.add(name, value)
    return kept


def _all(headers: CIMultiDictProxy[str] | Mapping[str, str], name: str) -> list[str]:
    if isinstance(headers, CIMultiDictProxy):
        return headers.getall(name, [])
    value = headers.get(name)
    return [value] if value is not None else []


class RelayClient:
    """Pooled connections to the other instances and the count of what was relayed."""

    def __init__(self, *, instance_id: str, registry: CollectorRegistry) -> None:
        self.instance_id = instance_id
        self.requests = Counter(
            "qualmon_relay_requests",
            "Requests this instance sent to another (relayed to a session's owner, or a "
            "part of the cluster session list), by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.requests.labels(outcome=outcome)
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the relay client runs only while the app does")
        return self._http

    def count(self, outcome: Outcome) -> None:
        self.requests.labels(outcome=outcome).inc()

    def headers_for(self, headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
        """A request's end-to-end headers, marked as relayed by this instance."""
        forwarded = end_to_end(headers)
        forwarded[RELAYED_HEADER] = self.instance_id
        return forwarded

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The client session's life (for the app's cleanup context)."""
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=CONNECT_TIMEOUT_SECONDS,
            sock_connect=CONNECT_TIMEOUT_SECONDS,
            sock_read=READ_TIMEOUT_SECONDS,
        )
        # auto_decompress off: bodies pass through as the owner encoded them, with its
        # Content-Encoding and Content-Length still true.
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            self._http = http
            try:
                yield
            finally:
                self._http = None
