"""Bearer tokens: JWT HS256 with scope, session and role claims."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, cast

import jwt
from aiohttp import web

from ..l10n.locales import is_language_tag
from ..sessions.snapshot import ROLES, Role

Scope = Literal["publish", "watch", "admin"]
SCOPES: tuple[Scope, ...] = ("publish", "watch", "admin")
MAX_SESSION_ID_CHARS = 128


@dataclass(frozen=True)
class Claims:
    """What a verified token allows."""

    scope: Scope
    session: str | None
    role: Role | None
    expires_at: int
    locale: str | None = None
    "The language the platform asks for (`locale` claim, a tag such as de or pt-BR): the"
    " reader's with a watch token, the therapist's with a therapist's publish token."


class TokenError(ValueError):
    """A token that cannot be used; the message is safe to show (no token text in it)."""


def issue_token(
    secret: str,
    *,
    scope: str,
    session: str | None = None,
    role: str | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
    locale: str | None = None,
) -> str:
    """Sign a token; refuses claim combinations the service would reject."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    if scope == "admin" and session is not None:
        raise TokenError("an admin token is not tied to a session")
    if scope != "admin" and not session:
        raise TokenError(f"a {scope} token needs --session")
    if scope == "publish" and role not in ROLES:
        raise TokenError(f"a publish token needs --role {' or '.join(ROLES)}")
    if scope != "publish" and role is not None:
        raise TokenError("only publish tokens carry a role")
    if session is not None and not 0 < len(session) <= MAX_SESSION_ID_CHARS:
        raise TokenError(f"session ids are 1–{MAX_SESSION_ID_CHARS} characters")
    if ttl_seconds <= 0:
        raise TokenError("ttl must be positive")
    if locale is not None and not is_language_tag(locale):
        raise TokenError("locale must be a language tag such as de or pt-BR")
    issued = int(now if now is not None else time.time())
    payload: dict[str, object] = {"scope": scope, "iat": issued, "exp": issued + ttl_seconds}
    if session is not None:
        payload["session"] = session
    if role is not None:
        payload["role"] = role
    if locale is not None:
        payload["locale"] = locale
    return jwt.encode(payload, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Claims:
    """Check signature, expiry and claim shape."""
    if not token.isascii():
        # A JWT is base64url and dots. A header that is not UTF-8 reaches us with lone
        # surrogates (aiohttp decodes with surrogateescape), which PyJWT's encode() raises on.
        raise TokenError("invalid token")
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "scope"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("invalid token") from exc
    scope, session, role = payload.get("scope"), payload.get("session"), payload.get("role")
    if scope not in SCOPES:
        raise TokenError("invalid token: unknown scope")
    if scope != "admin" and (not isinstance(session, str) or not session):
        raise TokenError("invalid token: no session")
    if scope == "admin":
        session = None
    if scope == "publish" and role not in ROLES:
        raise TokenError("invalid token: publish token without a valid role")
    if session is not None and len(session) > MAX_SESSION_ID_CHARS:
        raise TokenError("invalid token: session id too long")
    locale = payload.get("locale")
    # A tag no catalog speaks is still a tag (the next wish decides); a non-tag is a mistake.
    if locale is not None and not (isinstance(locale, str) and is_language_tag(locale)):
        raise TokenError("invalid token: locale is not a language tag")
    return Claims(
        scope=scope,
        session=session,
        role=role if scope == "publish" else None,
        expires_at=int(payload["exp"]),
        locale=locale,
    )


def _token_from(request: web.Request, *, allow_query: bool) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        kind, _, value = header.partition(" ")
        return value.strip() if kind.lower() == "bearer" and value.strip() else None
    if allow_query:
        return request.query.get("token") or None
    return None


_VERIFIED = web.RequestKey("verified_token", tuple)
"Where a request keeps its token's claims once verified: the relay looks before the handler."


def _verified(request: web.Request, secret: str, token: str) -> Claims:
    """verify_token, once per request and token (TokenError as it raises)."""
    cached = request.get(_VERIFIED)
    if cached is not None and cached[0] == token:
        return cast(Claims, cached[1])
    claims = verify_token(secret, token)
    request[_VERIFIED] = (token, claims)
    return claims


def token_claims(request: web.Request, secret: str) -> Claims | None:
    """The verified claims of the request's token (header or `?token=`), or None: for
    looking before the handler does, which then answers a bad token with its 401."""
    token = _token_from(request, allow_query=True)
    if token is None:
        return None
    try:
        return _verified(request, secret, token)
    except TokenError:
        return None


def _unauthorized(reason: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=reason + "\n", headers={"WWW-Authenticate": 'Bearer realm="qualmon"'}
    )


def authenticate(request: web.Request, secret: str, *, allow_query: bool = False) -> Claims:
    """Claims of the request's token, or 401."""
    token = _token_from(request, allow_query=allow_query)
    if token is None:
        raise _unauthorized("missing bearer token")
    try:
        return _verified(request, secret, token)
    except TokenError as exc:
        raise _unauthorized(str(exc)) from None


def require(claims: Claims, *, scopes: tuple[Scope, ...], session: str | None = None) -> None:
    """403 unless the token has one of the scopes (and, unless admin, this session)."""
    if claims.scope not in scopes:
        raise web.HTTPForbidden(text=f"token scope {claims.scope!r} not allowed here\n")
    if claims.scope != "admin" and session is not None and claims.session != session:
        raise web.HTTPForbidden(text="token is for another session\n")


def require_publisher(claims: Claims, *, session: str | None = None) -> tuple[str, Role]:
    """(session, role) of a publish token (and, if given, for this session); else 403.

    verify_token already refuses publish tokens without both claims: this says so to the
    type checker with a check that, unlike an assert, survives `python -O`.
    """
    require(claims, scopes=("publish",), session=session)
    if claims.session is None or claims.role is None:
        raise web.HTTPForbidden(text="publish token without session and role\n")
    return claims.session, claims.role


def authorize_session(
    request: web.Request, secret: str, *, scopes: tuple[Scope, ...] = ("admin", "watch")
) -> str:
    """The path's session id, once the token (header or `?token=`) may read it; else 401/403.

    Call before looking the session up, so a token for one session cannot probe for others.
    """
    session_id = request.match_info["session_id"]
    require(authenticate(request, secret, allow_query=True), scopes=scopes, session=session_id)
    return session_id
