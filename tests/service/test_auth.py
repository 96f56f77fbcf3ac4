"""Token issuing and checking (pure)."""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp import web

from qualmon.service.auth import Claims, TokenError, issue_token, require_publisher, verify_token

from ..conftest import Service
from ..fuzzing import raw_request

SECRET = "k" * 40


def test_round_trip_of_each_scope() -> None:
    publish = verify_token(SECRET, issue_token(SECRET, scope="publish", session="s", role="client"))
    assert (publish.scope, publish.session, publish.role) == ("publish", "s", "client")
    watch = verify_token(SECRET, issue_token(SECRET, scope="watch", session="s"))
    assert (watch.scope, watch.session, watch.role) == ("watch", "s", None)
    admin = verify_token(SECRET, issue_token(SECRET, scope="admin"))
    assert (admin.scope, admin.session) == ("admin", None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scope": "root"},
        {"scope": "admin", "session": "s"},
        {"scope": "watch"},
        {"scope": "publish", "session": "s"},
        {"scope": "publish", "session": "s", "role": "doctor"},
        {"scope": "watch", "session": "s", "role": "client"},
        {"scope": "watch", "session": "x" * 129},
        {"scope": "watch", "session": "s", "ttl_seconds": 0},
    ],
)
def test_refuses_claims_the_service_would_reject(kwargs: dict[str, object]) -> None:
    with pytest.raises(TokenError):
        issue_token(SECRET, **kwargs)  # type: ignore[arg-type]


def test_expired_wrong_key_and_forged_claims() -> None:
    old = issue_token(SECRET, scope="admin", ttl_seconds=10, now=time.time() - 60)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, old)
    with pytest.raises(TokenError, match="invalid"):
        verify_token("other" * 10, issue_token(SECRET, scope="admin"))
    forged = jwt.encode(
        {"scope": "publish", "session": "s", "exp": time.time() + 60}, SECRET, algorithm="HS256"
    )
    with pytest.raises(TokenError, match="role"):
        verify_token(SECRET, forged)
    unsigned = jwt.encode({"scope": "admin", "exp": time.time() + 60}, None, algorithm="none")
    with pytest.raises(TokenError):
        verify_token(SECRET, unsigned)


def forbidden_text(claims: Claims, session: str | None = None) -> str:
    with pytest.raises(web.HTTPForbidden) as info:
        require_publisher(claims, session=session)
    return info.value.text or ""


def test_require_publisher_names_session_and_role_or_refuses() -> None:
    """What the WHIP and stats routes rely on, checked by a raise that survives python -O."""
    publish = verify_token(SECRET, issue_token(SECRET, scope="publish", session="s", role="client"))
    assert require_publisher(publish) == ("s", "client")
    assert require_publisher(publish, session="s") == ("s", "client")
    assert "another session" in forbidden_text(publish, session="other")
    watch = verify_token(SECRET, issue_token(SECRET, scope="watch", session="s"))
    assert "scope 'watch' not allowed" in forbidden_text(watch)
    # verify_token never yields this; built by hand to show the check is not an assert.
    no_role = Claims(scope="publish", session="s", role=None, expires_at=0)
    assert "without session and role" in forbidden_text(no_role)


@pytest.mark.parametrize("token", ["a.\udcffb.c", "\udcff\udcfe", "é.b.c", "٣"])
def test_a_token_that_is_not_ascii_is_invalid(token: str) -> None:
    """Found by fuzzing: `Authorization: Bearer a.\\xffb.c` (not UTF-8) reaches us with a lone
    surrogate, and PyJWT's token.encode() raised UnicodeEncodeError: a 500."""
    with pytest.raises(TokenError, match=r"^invalid token$"):
        verify_token(SECRET, token)


async def test_a_bearer_header_that_is_not_utf8_is_a_401(service: Service) -> None:
    """The same through the app, with raw bytes no client library would send."""
    status, body = await raw_request(
        service,
        b"GET /v1/sessions HTTP/1.1\r\nHost: qualmon\r\nConnection: close\r\n"
        b"Authorization: Bearer a.\xffb.c\r\n\r\n",
    )
    assert (status, body) == (401, b"invalid token\n")
