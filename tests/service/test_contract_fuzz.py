"""Schemathesis against a real `qualmon serve`: every operation keeps the OpenAPI contract.

Generated requests (the document's examples, schemathesis' coverage cases and Hypothesis
fuzzing, valid and invalid) go to a subprocess started as an operator would; each answer must
not be a 5xx and must match the contract: a documented status, its content type, its headers
and its body schema. Derandomized, so a run is reproducible. Run alone, it prints what the
requests reached with `-s`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qualmon.service.auth import TokenError, issue_token
from qualmon.service.openapi import build_document
from qualmon.service.openapi.ingest import EXAMPLE_FRAGMENT, EXAMPLE_OFFER, EXAMPLE_SAMPLE
from qualmon.service.openapi.rtp import EXAMPLE_ATTACH

from ..conftest import SECRET, make_settings
from ..test_cli import CHECKOUT, free_port

pytestmark = pytest.mark.realtime

SESSION = "S1"
"The session of the tokens, and the id the document's examples use."
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = [not_a_server_error, *CONFORMANCE]
FUZZ = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
"Fuzzed cases per operation (on top of the examples and coverage cases), reproducibly."

# WHIP bodies are text; schemathesis sends them as it sends text/plain.
schemathesis.serializer.alias(["application/sdp", "application/trickle-ice-sdpfrag"], "text/plain")

DOCUMENT = build_document(make_settings())
contract = schemathesis.openapi.from_dict(DOCUMENT)
"Loaded at import: schemathesis makes one test per operation at collection. The server is"
" checked to serve this very document."


def token(scope: str, role: str | None = None, *, session: str = SESSION) -> str:
    return issue_token(
        SECRET,
        scope=scope,
        session=None if scope == "admin" else session,
        role=role,
        ttl_seconds=3600,
    )


ADMIN = token("admin")
CLIENT = token("publish", "client")
TOKENS = {
    "POST /whip": CLIENT,
    "DELETE /whip/{resource}": CLIENT,
    "POST /v1/sessions/{session_id}/stats": CLIENT,
    # An admin drain would end the shared server: fuzzed for its refusals only (403 here,
    # 401 for cases without a token); test_drain.py drains real servers.
    "POST /v1/admin/drain": token("watch"),
}
"Publish tokens where publish is required; admin everywhere else (unused on public routes;"
" PATCH cases go to legs of sessions of their own, which admin may reach)."
STREAMS = ("/v1/sessions/{session_id}/events", "/v1/sessions/{session_id}/ws")
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)
"Answers per operation, printed at the end to show what the fuzzing reached."
STATS_SESSIONS: set[object] = set()
SERVE_FLAGS = ("--max-legs", "1000")
"Every PATCH case gets a leg of its own; they are reaped 20 s later for bringing no media."
LEG_NUMBERS = itertools.count()


@dataclass
class Server:
    url: str
    log: Path

    def errors(self) -> list[str]:
        """Lines the service logged at ERROR (an unhandled exception, a dead socket, …)."""
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if " ERROR " in line]


@contextlib.contextmanager
def serve(cwd: Path, *flags: str) -> Iterator[Server]:
    """`qualmon serve` on a free port, with a throwaway store and loopback ICE; its log must
    stay free of errors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(
        QUALMON_SECRET=SECRET,
        QUALMON_DB=str(cwd / "qualmon.db"),
        QUALMON_ICE_ADDRESSES="127.0.0.1",
        # SIGTERM drains, waiting for live legs: the PATCH cases' legs would hold it 20 s.
        QUALMON_DRAIN_SECONDS="0.001",
        PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")])),
    )
    port = free_port()
    running = Server(url=f"http://127.0.0.1:{port}", log=cwd / "stderr.log")
    with open(running.log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qualmon.cli", "serve", "--port", str(port), *flags],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(running.url + "/healthz"):
            assert proc.poll() is None, running.log.read_text()
            assert time.monotonic() < deadline, "qualmon serve did not answer /healthz"
            time.sleep(0.1)
        yield running
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert not running.errors(), running.log.read_text(errors="replace")[-5000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    try:
        with serve(tmp_path_factory.mktemp("serve"), *SERVE_FLAGS) as running:
            yield running
    finally:
        for label, seen in sorted(STATUSES.items()):
            print(f"{label}: {sum(seen.values())} requests, {dict(sorted(seen.items()))}")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + value}


@pytest.fixture(scope="module")
def served(server: Server) -> Server:
    """The server, once it is known to serve the document the tests were made from."""
    answer = requests.get(server.url + "/openapi.json", timeout=10)
    assert answer.json() == json.loads(json.dumps(DOCUMENT))
    return server


def fresh_resource(served: Server) -> str:
    """A new WHIP resource, of a session of its own: what one case trickled cannot spoil the
    next (ICE fails once every pair has failed), and no case's leg replaces another's while
    its connectivity checks still run."""
    session = f"trickle-{next(LEG_NUMBERS)}"
    answer = requests.post(
        served.url + "/whip",
        data=EXAMPLE_OFFER.encode(),
        headers=_auth(token("publish", "therapist", session=session))
        | {"Content-Type": "application/sdp"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.headers["Location"].rsplit("/", 1)[1]


@contract.parametrize()
@FUZZ
def test_every_operation_keeps_the_contract(case: schemathesis.Case, served: Server) -> None:
    """No 5xx; status, content type, headers and body as documented."""
    label = f"{case.method} {case.path}"
    bearer = TOKENS.get(label, ADMIN)
    if case.path in STREAMS and _may_stream(case, served):
        # Schemathesis reads whole bodies, and an accepted stream never ends: the streams are
        # fuzzed for their refusals (401, 403, 404, and 400 for a WebSocket request without
        # the handshake). Their messages are checked against the schemas in test_contract.py.
        case.path_parameters["session_id"] = SESSION + "-never-live"
    if label == "PATCH /whip/{resource}":
        case.path_parameters["resource"] = fresh_resource(served)
    if label == "POST /v1/sessions/{session_id}/stats":
        # Samples must get past the per-participant rate limit (one per 0.5 s) to the parser:
        # each case posts for a session of its own, with a token for it.
        session = case.path_parameters.get("session_id")
        if session in STATS_SESSIONS:
            session = case.path_parameters["session_id"] = f"{session}-{len(STATS_SESSIONS)}"
        STATS_SESSIONS.add(session)
        with contextlib.suppress(TokenError, TypeError):  # an id no token carries: 403
            bearer = token("publish", "client", session=str(session))
    answer = case.call_and_validate(
        base_url=served.url, headers=_auth(bearer), checks=CHECKS, timeout=10
    )
    STATUSES[label][answer.status_code] += 1


def _may_stream(case: schemathesis.Case, served: Server) -> bool:
    """Whether the case could open an event stream or a WebSocket: a session the service
    knows (the examples' S1, one a probe sample or a PATCH case created), and for the
    WebSocket the handshake's headers."""
    headers = {name.lower(): str(value).lower() for name, value in (case.headers or {}).items()}
    if case.path.endswith("/ws") and not (
        headers.get("upgrade") == "websocket" and "upgrade" in headers.get("connection", "")
    ):
        return False
    session = quote(str(case.path_parameters.get("session_id", "")), safe="")
    known = requests.get(f"{served.url}/v1/sessions/{session}", headers=_auth(ADMIN), timeout=10)
    return known.status_code != 404


def test_a_whip_resource_lives_as_documented(served: Server) -> None:
    """POST, PATCH, DELETE of one real leg, then the ended resource: each answer conforms."""
    post = contract["/whip"]["POST"].Case(body=EXAMPLE_OFFER, media_type="application/sdp")
    created = post.call_and_validate(base_url=served.url, headers=_auth(CLIENT), checks=CHECKS)
    assert created.status_code == 201, created.text
    resource = created.headers["location"][0].rsplit("/", 1)[1]
    item = contract["/whip/{resource}"]
    steps = [
        (
            item["PATCH"].Case(
                path_parameters={"resource": resource},
                body=EXAMPLE_FRAGMENT,
                media_type="application/trickle-ice-sdpfrag",
            ),
            204,
        ),
        (item["DELETE"].Case(path_parameters={"resource": resource}), 200),
        (item["DELETE"].Case(path_parameters={"resource": resource}), 404),
    ]
    for case, status in steps:
        answer = case.call_and_validate(base_url=served.url, headers=_auth(CLIENT), checks=CHECKS)
        assert answer.status_code == status, (case.method, answer.text)


def test_a_plain_rtp_leg_lives_as_documented(served: Server) -> None:
    """POST (201, SRTP and plain), DELETE (204), DELETE again (404): each answer conforms."""
    bodies: list[dict[str, Any]] = [EXAMPLE_ATTACH, {**EXAMPLE_ATTACH, "srtp": False}]
    for body in bodies:
        post = contract["/v1/sessions/{session_id}/rtp"]["POST"].Case(
            path_parameters={"session_id": "rtp-life"}, body=body, media_type="application/json"
        )
        created = post.call_and_validate(base_url=served.url, headers=_auth(ADMIN), checks=CHECKS)
        assert created.status_code == 201, created.text
        assert ("srtp_key" in created.json()) is body["srtp"]
        leg = {"session_id": "rtp-life", "rtp_id": created.json()["id"]}
        for status in (204, 404):
            delete = contract["/v1/sessions/{session_id}/rtp/{rtp_id}"]["DELETE"].Case(
                path_parameters=leg
            )
            answer = delete.call_and_validate(
                base_url=served.url, headers=_auth(ADMIN), checks=CHECKS
            )
            assert answer.status_code == status, answer.text


def _call(
    served: Server, bearer: str, path: str, method: str, checks: list[Any] = CHECKS, **kwargs: Any
) -> int:
    case = contract[path][method].Case(**kwargs)
    answer = case.call_and_validate(base_url=served.url, headers=_auth(bearer), checks=checks)
    return answer.status_code


def test_refusals_the_fuzzing_does_not_reach_are_as_documented(served: Server) -> None:
    """Too large (413), too soon (429) and an ICE restart (422): status, headers and body
    as the contract says."""
    stats = "/v1/sessions/{session_id}/stats"
    big_offer = EXAMPLE_OFFER + "a=x-padding:" + "x" * 70_000 + "\r\n"
    restart = "a=ice-ufrag:other\r\na=ice-pwd:otherpasswordotherpassword\r\n" + EXAMPLE_FRAGMENT
    steps: list[tuple[str, str, str, dict[str, Any], int]] = [
        (CLIENT, "/whip", "POST", {"body": big_offer, "media_type": "application/sdp"}, 413),
        (
            token("publish", "client", session="big"),
            stats,
            "POST",
            {
                "path_parameters": {"session_id": "big"},
                "body": EXAMPLE_SAMPLE | {"x": "x" * 20_000},
            },
            413,
        ),
        *(
            (
                token("publish", "client", session="soon"),
                stats,
                "POST",
                {"path_parameters": {"session_id": "soon"}, "body": EXAMPLE_SAMPLE},
                status,
            )
            for status in (204, 429)
        ),
        (
            ADMIN,
            "/whip/{resource}",
            "PATCH",
            {
                "path_parameters": {"resource": fresh_resource(served)},
                "body": restart,
                "media_type": "application/trickle-ice-sdpfrag",
            },
            422,
        ),
    ]
    for bearer, path, method, kwargs, status in steps:
        assert _call(served, bearer, path, method, **kwargs) == status, (method, path)


def test_a_full_instance_refuses_as_documented(tmp_path: Path) -> None:
    """At its leg cap an instance answers offers 503 with Retry-After, and /readyz 503 (a
    5xx by design, so only conformance is checked)."""
    with serve(tmp_path, "--max-legs", "1") as full:
        for session, status in (("cap-a", 201), ("cap-b", 503)):
            publisher = token("publish", "client", session=session)
            offer = {"body": EXAMPLE_OFFER, "media_type": "application/sdp"}
            assert _call(full, publisher, "/whip", "POST", CONFORMANCE, **offer) == status
        assert _call(full, ADMIN, "/readyz", "GET", CONFORMANCE) == 503


# Addresses a check may go to from this machine: loopback, documentation ranges, special
# ones; never a real host. Host names stand for browsers' mDNS candidates.
ADDRESSES = st.one_of(
    st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "255.255.255.255", "::ffff:127.0.0.1"]),
    st.ip_addresses(network="127.0.0.0/8").map(str),
    st.ip_addresses(network="192.0.2.0/24").map(str),
    st.ip_addresses(network="2001:db8::/32").map(str),
    st.sampled_from(["3b1c7a2e-1d4f-4e5a-9b6c-7d8e9f0a1b2c.local", "localhost"]),
)
USUAL = {
    "foundation": "1",
    "component": 1,
    "transport": "udp",
    "priority": 2130706431,
    "address": "127.0.0.1",
    "port": 50000,
    "type": "host",
    "extensions": "",
}
"A candidate the leg can use; each generated one is this with one field made odd."
ODD = {
    "foundation": st.from_regex(r"[A-Za-z0-9+/]{1,32}", fullmatch=True),
    "component": st.integers(0, 300),
    "transport": st.sampled_from(["UDP", "tcp", "sctp"]),
    "priority": st.integers(0, 2**40),
    "address": ADDRESSES,
    "port": st.sampled_from([0, 9, 65535, 65536, 99999]) | st.integers(0, 99999),
    "type": st.sampled_from(["srflx", "prflx", "relay", "other"]),
    "extensions": st.sampled_from(
        [" raddr 0.0.0.0 rport 0", " tcptype active", " generation 0 network-id 1"]
    ),
}


CANDIDATE = (
    "a=candidate:{foundation} {component} {transport} {priority} {address} {port} typ {type}"
    "{extensions}"
)


def _candidate(field: str) -> st.SearchStrategy[str]:
    return ODD[field].map(lambda value: CANDIDATE.format(**{**USUAL, field: value}))


FRAGMENT_LINES = st.tuples(*(_candidate(field) for field in sorted(ODD)))
"One candidate per odd field in each fragment, so every field is varied in every example."


def test_trickled_candidates_keep_the_contract_and_the_leg(served: Server) -> None:
    """Well-formed and odd candidates PATCHed to a live leg: answers as documented, and
    nothing in the service fails behind the 204 (its log stays free of errors)."""

    @FUZZ
    @given(lines=FRAGMENT_LINES, end=st.booleans())
    def trickle(lines: tuple[str, ...], end: bool) -> None:
        fragment = "\r\n".join([*lines, *(["a=end-of-candidates"] if end else [])]) + "\r\n"
        case = contract["/whip/{resource}"]["PATCH"].Case(
            path_parameters={"resource": fresh_resource(served)},
            body=fragment,
            media_type="application/trickle-ice-sdpfrag",
        )
        answer = case.call_and_validate(
            base_url=served.url, headers=_auth(ADMIN), checks=CHECKS, timeout=10
        )
        STATUSES["PATCH /whip/{resource} (candidates)"][answer.status_code] += 1
        assert answer.status_code in (204, 400), answer.text

    trickle()
    # Connectivity checks run behind the 204s, paced 20 ms apart; give the last ones time.
    time.sleep(1.0)
    assert not served.errors(), served.log.read_text(errors="replace")[-5000:]
