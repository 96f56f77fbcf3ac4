"""A small client of Janus' HTTP API: one Janus session of qualmon's own with one VideoRoom
handle, used only for synchronous requests (`rtp_forward`, `stop_rtp_forward`).

qualmon never joins a room: a VideoRoom handle that has not joined may still forward a
publisher's media (with the room secret), and nobody in the room sees it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
REQUEST_TIMEOUT_SECONDS = 5.0
"A Janus that does not answer a synchronous request in this long is treated as down."
MAX_REASON_CHARS = 200


class JanusError(RuntimeError):
    """Janus refused a request or could not be reached; the message is one line, Janus' own
    reason where it gave one."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(_one_line(reason))
        self.code = code


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_REASON_CHARS] or "no reason given"


def _plugin_data(doc: Any) -> dict[str, Any]:
    """The VideoRoom's answer in a Janus reply, or JanusError with the reason it gave."""
    if not isinstance(doc, dict):
        raise JanusError("Janus answered something that is not a JSON object")
    if doc.get("janus") == "error":
        error = doc.get("error")
        error = error if isinstance(error, dict) else {}
        raise JanusError(str(error.get("reason", "error")), code=_int(error.get("code")))
    plugin = doc.get("plugindata")
    data = plugin.get("data") if isinstance(plugin, dict) else None
    if not isinstance(data, dict):
        raise JanusError(f"Janus answered {str(doc.get('janus'))[:40]!r} without plugin data")
    if "error" in data or "error_code" in data:
        raise JanusError(str(data.get("error", "error")), code=_int(data.get("error_code")))
    return data


def _int(value: object) -> int | None:
    return value if type(value) is int else None


class JanusClient:
    """Janus' HTTP API at `url` (its base path, e.g. http://janus:8088/janus)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http: aiohttp.ClientSession | None = None
        "Made on first use: a ClientSession belongs to the running loop."
        self.session_id: int | None = None
        self.handle_id: int | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_urlsafe(9)}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(self.url + path, json=body, timeout=timeout) as r:
                doc = await r.json(content_type=None)
        except TimeoutError:
            raise JanusError("Janus did not answer in time") from None
        except aiohttp.ContentTypeError:
            raise JanusError("Janus answered something that is not JSON") from None
        except ValueError:
            raise JanusError("Janus answered something that is not JSON") from None
        except aiohttp.ClientError as exc:
            # The type only: aiohttp's messages quote addresses.
            raise JanusError(f"Janus is unreachable ({type(exc).__name__})") from None
        if not isinstance(doc, dict):
            raise JanusError("Janus answered something that is not a JSON object")
        return doc

    async def _create(self, path: str, body: dict[str, Any]) -> int:
        doc = await self._post(path, body)
        if doc.get("janus") == "error":
            _plugin_data(doc)  # raises with Janus' reason
        data = doc.get("data")
        ident = data.get("id") if isinstance(data, dict) else None
        if type(ident) is not int:
            raise JanusError("Janus answered without an id")
        return ident

    async def ensure_handle(self) -> tuple[int, int]:
        """Our Janus session and VideoRoom handle, created on first use (or again after
        Janus dropped them)."""
        if self.session_id is None:
            self.session_id = await self._create("", {"janus": "create"})
            self.handle_id = None
        if self.handle_id is None:
            try:
                self.handle_id = await self._create(
                    f"/{self.session_id}", {"janus": "attach", "plugin": VIDEOROOM}
                )
            except JanusError:
                self.session_id = None  # likely gone: start afresh next time
                raise
        return self.session_id, self.handle_id

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request; its answer's data, or JanusError."""
        session_id, handle_id = await self.ensure_handle()
        doc = await self._post(f"/{session_id}/{handle_id}", {"janus": "message", "body": body})
        try:
            return _plugin_data(doc)
        except JanusError as exc:
            if exc.code in (458, 459):  # no such session / handle: Janus restarted or timed out
                self.session_id = self.handle_id = None
            raise

    async def keepalive(self) -> None:
        """Keep our Janus session (Janus drops one idle for `session_timeout`, 60 s)."""
        if self.session_id is None:
            return
        doc = await self._post(f"/{self.session_id}", {"janus": "keepalive"})
        if doc.get("janus") == "error":
            log.info("Janus session gone; a new one is made on next use")
            self.session_id = self.handle_id = None

    async def close(self) -> None:
        """Destroy our Janus session (its forwarders stay: they belong to publishers)."""
        session_id, self.session_id, self.handle_id = self.session_id, None, None
        if session_id is not None:
            try:
                await self._post(f"/{session_id}", {"janus": "destroy"})
            except JanusError as exc:
                log.info("could not destroy the Janus session: %s", exc)
        http, self._http = self._http, None
        if http is not None:
            await http.close()
