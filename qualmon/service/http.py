"""HTTP pieces the ingest routes share: bounded body reads, error answers, CORS and counting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole body, or 413 once it passes `limit` bytes (declared or as it arrives).

    `content.read(n)` returns only what has arrived so far, so a body split over TCP
    segments must be read until EOF; stopping at the limit keeps a flood out of memory.
    """
    too_large = f"{what} larger than {limit} bytes\n"
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit, actual_size=request.content_length, text=too_large
        )
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(
                max_size=limit, actual_size=len(body), text=too_large
            )
    return bytes(body)


def bad_request(reason: str) -> web.HTTPBadRequest:
    """400 with the reason's first line only: parser messages can run long."""
    first = (reason.strip().splitlines() or ["bad request"])[0]
    return web.HTTPBadRequest(text=first + "\n")


def unavailable(reason: str, retry_after_seconds: int) -> web.HTTPServiceUnavailable:
    """503 that tells WHIP clients and probes when to come back."""
    return web.HTTPServiceUnavailable(
        text=reason + "\n", headers={"Retry-After": str(retry_after_seconds)}
    )


def with_cors(
    headers: Mapping[str, str], count: Callable[[web.Request, int], None]
) -> Callable[[Handler], Handler]:
    """Decorator: add CORS `headers` to every answer, errors included, and `count` its status.

    Browsers hide an error answer without CORS headers from the page, so 4xx/5xx need
    them as much as successes do.
    """

    def decorate(handler: Handler) -> Handler:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(headers)
                count(request, exc.status)
                raise
            response.headers.update(headers)
            count(request, response.status)
            return response

        return wrapper

    return decorate
