"""Tokens of every shape on the endpoints that take them: 401/403/400 (or the endpoint's own
answer for a validly signed one), never a 5xx, and no token or address in any log line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from jwt.warnings import InsecureKeyLengthWarning

from qualmon.service.auth import issue_token

from ..conftest import SECRET, Service, make_settings
from ..fuzz_json import mutated_json
from ..fuzzing import examples, fuzz_service, huge_numbers, nasty_text, raw_request
from ..privacy import IPV4

pytestmark = pytest.mark.fuzz

# (method, path, whether `?token=` is read there)
ENDPOINTS = (
    ("GET", "/v1/sessions", True),
    ("GET", "/v1/sessions/s1", True),
    ("GET", "/v1/sessions/s1/report", True),
    ("GET", "/v1/sessions/s1/events", True),
    ("GET", "/v1/reports", True),
    ("GET", "/widget", True),
    ("POST", "/v1/sessions/s1/stats", False),
    ("POST", "/whip", False),
    ("PATCH", "/whip/no-such-resource", False),
    ("DELETE", "/whip/no-such-resource", False),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_safe(text: str) -> str:
    """What aiohttp's client lets through in a header: no control characters."""
    return "".join(c for c in text if c == "\t" or not (c < " " or "\x7f" <= c <= "\x9f"))


CLAIM_VALUES = st.one_of(
    st.sampled_from(["publish", "watch", "admin", "therapist", "client", "s1", ""]),
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and ±Infinity become JSON's NaN/Infinity literals in the payload
    st.sampled_from([10**400, -(10**400), time.time() + 600, time.time() - 600]),
    st.booleans(),
    st.none(),
    nasty_text(),
    huge_numbers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(min_size=129, max_size=300),
)
CLAIM_NAMES = ("scope", "session", "role", "exp", "iat", "nbf", "aud", "iss", "sub")
ODD_CLAIMS = st.dictionaries(st.sampled_from(CLAIM_NAMES), CLAIM_VALUES)
VALID_CLAIMS = st.sampled_from(
    [
        {"scope": "admin"},
        {"scope": "watch", "session": "s1"},
        {"scope": "publish", "session": "s1", "role": "client"},
        {"scope": "publish", "session": "s2", "role": "therapist"},
    ]
)


def signed(header: bytes, payload: bytes) -> str:
    """A JWT of these exact bytes with a valid HS256 signature (PyJWT checks claims first)."""
    signing_input = b64(header) + "." + b64(payload)
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def valid_token(claims: dict[str, Any], ttl: int = 600) -> str:
    return issue_token(SECRET, ttl_seconds=ttl, **claims)


KINDS = ("garbage", "jwt-shaped", "tampered", "signed", "wrong-alg", "other-key", "expired")
KINDS += ("huge", "valid")


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, str]:
    """(kind, token); kinds other than "signed" and "valid" can never be accepted."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "garbage":
        return kind, draw(nasty_text(max_size=60))
    if kind == "jwt-shaped":
        parts = [
            draw(
                st.one_of(
                    st.binary(max_size=40),
                    ODD_CLAIMS.map(lambda c: json.dumps(c).encode()),
                    st.sampled_from([b'{"alg":"HS256","typ":"JWT"}', b'{"alg":"none"}', b"[]"]),
                )
            )
            for _ in range(draw(st.integers(1, 4)))
        ]
        return kind, ".".join(b64(p) for p in parts)
    if kind == "tampered":
        header, _, signature = valid_token(draw(VALID_CLAIMS)).split(".")
        claims = {**draw(VALID_CLAIMS), **draw(ODD_CLAIMS), "exp": int(time.time()) + 600}
        return kind, ".".join([header, b64(json.dumps(claims).encode()), signature])
    if kind == "signed":
        payload = draw(
            st.one_of(
                ODD_CLAIMS.map(lambda c: json.dumps(c).encode()),
                mutated_json([{"scope": "admin", "exp": 4_000_000_000}], CLAIM_NAMES).map(
                    str.encode
                ),
                st.binary(max_size=40),
            )
        )
        return kind, signed(b'{"alg":"HS256","typ":"JWT"}', payload)
    claims = {**draw(VALID_CLAIMS), "exp": int(time.time()) + 600}
    if kind == "wrong-alg":
        algorithm = draw(st.sampled_from(["HS384", "HS512", "none"]))
        key = None if algorithm == "none" else SECRET
        with warnings.catch_warnings():  # our key is short for HS384/512: PyJWT says so
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return kind, jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]
    if kind == "other-key":
        return kind, jwt.encode(claims, "another-secret-" + "y" * 24, algorithm="HS256")
    if kind == "expired":
        return kind, jwt.encode({**claims, "exp": 1}, SECRET, algorithm="HS256")
    if kind == "huge":
        return kind, draw(st.sampled_from(["A", "eyJ."])) * draw(st.sampled_from([2000, 9000]))
    return kind, valid_token(draw(VALID_CLAIMS))


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    async with fuzz_service(make_settings()) as running:
        yield running


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(caplog.handler.format(record) for record in caplog.records)


@examples(80)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    token=tokens(),
    scheme=st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "Basic ", "", "Bearer\t"]),
    in_query=st.booleans(),
)
async def test_no_token_gets_a_5xx_or_into_a_log(
    service: Service,
    caplog: pytest.LogCaptureFixture,
    endpoint: tuple[str, str, bool],
    token: tuple[str, str],
    scheme: str,
    in_query: bool,
) -> None:
    """Random text, JWT-shaped garbage, valid tokens with tampered claims, signed tokens with
    claims of any type, other algorithms and keys, expired and 9 KB tokens, in the header or
    in `?token=`: never a 5xx; a token that cannot be valid is refused (401, or 400 when too
    big to parse); no log line holds the token or a client address."""
    method, path, query_allowed = endpoint
    kind, value = token
    caplog.clear()
    caplog.set_level(logging.INFO)
    headers = {"Content-Type": "application/sdp"} if path == "/whip" else {}
    params = {}
    if in_query and query_allowed:
        params["token"] = value
    else:
        headers["Authorization"] = header_safe(scheme + value)
    async with service.http.request(
        method, service.url + path, headers=headers, params=params, data=b"v=0\r\n"
    ) as r:
        status, text = r.status, await r.text()
    event(f"{kind}: {status}")
    assert status < 500, (status, text)
    if kind not in ("signed", "valid"):
        assert status in (400, 401), (status, text)
    log = logged(caplog)
    assert not IPV4.findall(log.encode()), log
    assert len(value) < 8 or value not in log, log


@examples(40)
@given(
    value=st.binary(min_size=1, max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b),
    in_query=st.booleans(),
)
@example(value=b"a.\xffb.c", in_query=False)
async def test_raw_bytes_as_token_are_refused(
    service: Service, caplog: pytest.LogCaptureFixture, value: bytes, in_query: bool
) -> None:
    """Bytes a client library would not send (invalid UTF-8, controls) in the Authorization
    header or the query: a 4xx, never a 5xx, and nothing of it in the logs."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    if in_query:
        head = b"GET /v1/sessions?token=" + value.replace(b" ", b"+") + b" HTTP/1.1\r\n"
    else:
        head = b"GET /v1/sessions HTTP/1.1\r\nAuthorization: Bearer " + value + b"\r\n"
    status, body = await raw_request(service, head + b"Host: qualmon\r\nConnection: close\r\n\r\n")
    assert 400 <= status < 500, (status, body)
    log = logged(caplog)
    assert not IPV4.findall(log.encode()), log
