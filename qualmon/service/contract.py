"""The API contract: `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (the same, readable)."""

from __future__ import annotations

import json

from aiohttp import web

from .keys import settings_key
from .openapi import build_document
from .openapi.page import DOCS_CSP, render_docs

PAGE_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def setup(app: web.Application) -> None:
    """Build the document and its page once; both routes then serve bytes."""
    document = build_document(app[settings_key])
    spec = json.dumps(document, ensure_ascii=False).encode()
    page = render_docs(document).encode()

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json", charset="utf-8")

    async def docs(request: web.Request) -> web.Response:
        return web.Response(
            body=page, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
