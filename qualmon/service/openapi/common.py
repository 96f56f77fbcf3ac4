"""Pieces every operation of the contract shares: auth, error answers, headers, parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth import MAX_SESSION_ID_CHARS, Scope
from .schemas import Schema, ref

Operation = dict[str, Any]

TEXT: Schema = {"text/plain": {"schema": {"type": "string"}}}
"A one-line reason, as every 4xx answer carries."
HTML: Schema = {"text/html": {"schema": {"type": "string"}}}


def json_body(schema: Schema, example: object | None = None) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def header(description: str, schema: Schema | None = None) -> Schema:
    """A header the answer always carries."""
    return {"description": description, "required": True, "schema": schema or {"type": "string"}}


def constant_headers(values: Mapping[str, str]) -> dict[str, Schema]:
    """Headers the code always sends with these values (CORS)."""
    return {name: header(f"Always `{value}`.", {"const": value}) for name, value in values.items()}


RETRY_AFTER = header(
    "Seconds to wait before trying again.", {"type": "string", "pattern": "^[0-9]+$"}
)


def answer(
    description: str, content: Schema | None = None, headers: dict[str, Schema] | None = None
) -> Schema:
    """A response object."""
    doc: Schema = {"description": description}
    if headers:
        doc["headers"] = headers
    if content is not None:
        doc["content"] = content
    return doc


def reason(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    """An error answer: a text/plain one-line reason."""
    return answer(description, TEXT, headers)


RESPONSES: dict[str, Schema] = {
    "Unauthorized": reason(
        "No token, or one that is malformed, badly signed or expired.",
        {"WWW-Authenticate": header("How to authenticate.", {"const": 'Bearer realm="qualmon"'})},
    ),
    "Forbidden": reason("A valid token of another scope, session or role."),
    "OwnerUnreachable": reason(
        "In a cluster, this request was for the session's owner, another instance, which "
        "could not be reached (`Retry-After` says when to try again; by then the session may "
        "have moved to a live instance).",
        {"Retry-After": RETRY_AFTER},
    ),
    "InternalError": answer(
        "A bug in qualmon; logged without request details.", json_body(ref("InternalError"))
    ),
}


def shared(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


SESSION_ID: Schema = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "description": "The platform's opaque session id (what tokens carry, "
    f"1–{MAX_SESSION_ID_CHARS} characters).",
    "schema": {"type": "string", "minLength": 1},
    "example": "S1",
}


LANG: Schema = {
    "name": "lang",
    "in": "query",
    "required": False,
    "description": "The reader's language for the therapist's words (warning texts, widget, "
    "report page, clinician summary): a language tag such as `de` or `pt-BR`. Precedence: "
    "`lang`, then the token's `locale` claim, then `Accept-Language`, then QUALMON_LOCALE; "
    "a tag no catalog speaks passes to the next. The answer's `Content-Language` names the "
    "language used.",
    "schema": {"type": "string", "maxLength": 35},
    "example": "de",
}
BAD_LANG = "`lang` is not a language tag."


def security(*scopes: Scope, query: bool = False) -> list[dict[str, list[str]]]:
    """Bearer token of one of `scopes` (role names, as OpenAPI 3.1 allows); `query`: the
    same token may travel as `?token=` instead."""
    names: list[str] = list(scopes)
    return [{"bearer": names}, {"tokenQuery": names}] if query else [{"bearer": names}]


SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "JWT HS256 signed with QUALMON_SECRET (`qualmon token`). Claims: "
        "`scope` publish | watch | admin; `session` (not for admin); `role` therapist | "
        "client (publish only); `exp`; optional `locale`, a language tag (the reader's "
        "language; a therapist's publish token also sets its session's webhook language). "
        "The scopes an operation lists are the token scopes it "
        "accepts; watch and publish tokens only for the session in the path.",
    },
    "tokenQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The same JWT as a query parameter, for GET endpoints a browser opens "
        "directly (EventSource, iframes, links). Used only when there is no Authorization "
        "header.",
    },
}


def operation(
    *,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Schema],
    auth: list[dict[str, list[str]]] | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    operation_id: str,
) -> Operation:
    """One operation; every one may answer 500, and every one with auth 401 and 403."""
    doc: Operation = {"tags": [tag], "summary": summary, "description": description}
    doc["operationId"] = operation_id
    if parameters:
        doc["parameters"] = parameters
    if body is not None:
        doc["requestBody"] = body
    doc["security"] = auth if auth is not None else []
    all_responses = dict(responses)
    if auth:
        all_responses.setdefault("401", shared("Unauthorized"))
        all_responses.setdefault("403", shared("Forbidden"))
    all_responses["500"] = shared("InternalError")
    doc["responses"] = dict(sorted(all_responses.items()))
    return doc


def relayed(doc: Operation) -> None:
    """Mark an operation a cluster relays to the session's owner: it may answer 503 when the
    owner cannot be reached (in the words of its own 503, if it has one)."""
    responses = doc["responses"]
    own = responses.get("503")
    if own is None or "description" not in own:
        responses["503"] = shared("OwnerUnreachable")
        doc["responses"] = dict(sorted(responses.items()))
        return
    responses["503"] = {
        **own,
        "description": own["description"].rstrip(".") + "; or, in a cluster, the session's "
        "owner (another instance) cannot be reached.",
        "headers": {**own.get("headers", {}), "Retry-After": RETRY_AFTER},
    }
