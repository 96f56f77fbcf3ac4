"""POST/DELETE /v1/sessions/{id}/rtp: a real service, real RTP and SRTP over loopback UDP."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from qualmon.config import Settings
from qualmon.media.rtp_source import RtpSource
from qualmon.service.keys import rtp_ports_key
from qualmon.service.openapi.rtp import EXAMPLE_ATTACH
from qualmon.service.rtp_routes import parse_attach
from qualmon.sessions.leg import Leg

from ..conftest import Service, make_settings, run_service, wait_for
from ..rtp_sender import RtpSender, client_speech, free_udp_port
from .test_contract import check

OPUS = {"role": "client", "codec": "opus", "payload_type": 111, "clock_rate": 48000}


def rtp_settings(ports: int = 8, **overrides: Any) -> Settings:
    """Settings with a small plain-RTP range of its own (ports another program holds are
    skipped by the pool, so a busy machine only shortens it)."""
    first = free_udp_port()
    return make_settings(rtp_ports=(first, min(first + ports - 1, 65535)), **overrides)


@pytest.fixture
def settings() -> Settings:
    return rtp_settings()


async def attach(
    service: Service,
    session: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any, dict[str, str]]:
    """POST an attach (admin token unless `headers` say otherwise): status, JSON or text,
    headers."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    sent = {"Content-Type": content_type, **(headers or service.auth("admin"))}
    url = f"{service.url}/v1/sessions/{session}/rtp"
    async with service.http.post(url, data=data, headers=sent) as r:
        answer = await r.json() if r.status == 201 else await r.text()
        return r.status, answer, dict(r.headers)


async def detach(
    service: Service, session: str, rtp_id: str, *, token: tuple[str, ...] = ("admin",)
) -> tuple[int, str]:
    """DELETE an attach with a token of (scope, session, role); admin by default."""
    headers = service.auth(*token)
    url = f"{service.url}/v1/sessions/{session}/rtp/{rtp_id}"
    async with service.http.delete(url, headers=headers) as r:
        return r.status, await r.text()


def leg_of(service: Service, rtp_id: str) -> tuple[Leg, RtpSource]:
    leg = service.sessions.legs_by_resource[rtp_id]
    source = leg.source
    assert isinstance(source, RtpSource)
    return leg, source


def ports_in_use(service: Service) -> int:
    return service.app[rtp_ports_key].in_use


def ignored(service: Service, reason: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "qualmon_rtp_ignored_packets_total", {"reason": reason}
    )
    return value or 0.0


async def client_leg(service: Service, session: str) -> dict[str, Any]:
    leg: dict[str, Any] = (await service.session_json(session))["legs"]["client"]
    return leg


async def test_srtp_leg_counts_exactly_what_was_lost_before_it(service: Service) -> None:
    """The first attach creates the session; every 20th packet left out by the sender is
    `packets_lost`, exactly, across the sequence-number wrap; no RTT on this path."""
    status, answer, headers = await attach(service, "S1", {**OPUS, "srtp": True})
    assert status == 201, answer
    check("RtpAttachment", answer)
    assert answer["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
    assert len(base64.b64decode(answer["srtp_key"])) == 30
    assert headers["Location"] == f"/v1/sessions/S1/rtp/{answer['id']}"
    assert (await service.session_json("S1"))["legs"]["client"]["state"] == "connecting"
    payloads = client_speech(4.0, 4.0)  # 200 packets
    with RtpSender(answer["host"], answer["port"], srtp_key=answer["srtp_key"]) as sender:
        sent = await sender.send(payloads, interval=0.002, skip=lambda i: i % 20 == 10)
    assert sent == 190
    leg = await wait_for(
        lambda: _leg_with(service, "S1", packets_received=190), what="190 packets received"
    )
    assert leg["packets_lost"] == 10
    assert leg["state"] == "live"
    assert leg["rtt_seconds"] is None
    assert ignored(service, "srtp") == 0


async def _leg_with(service: Service, session: str, **expected: Any) -> dict[str, Any] | None:
    leg = await client_leg(service, session)
    return leg if all(leg[k] == v for k, v in expected.items()) else None


@pytest.mark.realtime
async def test_plain_rtp_speech_is_measured(service: Service) -> None:
    """Opus speech from the committed espeak dialogue, paced in real time (3 s): speech
    seconds grow, nothing is lost, and the attach answer carries no SRTP fields."""
    status, answer, _ = await attach(service, "S2", {**OPUS, "srtp": False})
    assert status == 201, answer
    assert set(answer) == {"id", "host", "port"}
    with RtpSender(answer["host"], answer["port"]) as sender:
        await sender.send(client_speech(4.2, 3.0))
    leg = await wait_for(
        lambda: _leg_with(service, "S2", packets_received=150), what="150 packets received"
    )
    assert leg["packets_lost"] == 0
    await wait_for(
        lambda: _speech_seconds(service, "S2"), timeout=5.0, what="speech from the client leg"
    )
    assert leg_of(service, answer["id"])[1].frames_classified >= 140


async def _speech_seconds(service: Service, session: str) -> bool:
    return bool((await client_leg(service, session))["speech_seconds"] > 0.5)


async def test_a_second_sender_is_ignored_and_counted(service: Service) -> None:
    """The first sender is latched; a second socket's packets are dropped and counted."""
    status, answer, _ = await attach(service, "S3", {**OPUS, "srtp": False})
    assert status == 201, answer
    payloads = client_speech(4.0, 0.4)
    with RtpSender(answer["host"], answer["port"]) as first:
        await first.send(payloads, interval=0.002)
        await wait_for(lambda: _leg_with(service, "S3", packets_received=20), what="first 20")
        with RtpSender(answer["host"], answer["port"], ssrc=7) as second:
            await second.send(payloads, interval=0.002, first_index=20)
            _, source = leg_of(service, answer["id"])
            await wait_for(lambda: source.ignored["foreign_source"] == 20, what="20 foreign")
        await first.send(payloads, interval=0.002, first_index=20)
    assert await wait_for(lambda: _leg_with(service, "S3", packets_received=40, packets_lost=0))
    assert ignored(service, "foreign_source") == 20


async def test_srtp_with_a_wrong_key_is_not_received(service: Service) -> None:
    """Packets that do not authenticate are not received and latch nothing: the sender with
    the key, from another port, is then measured."""
    status, answer, _ = await attach(service, "S4", {**OPUS, "srtp": True})
    assert status == 201, answer
    wrong = base64.b64encode(bytes(30)).decode()
    payloads = client_speech(4.0, 0.4)
    with RtpSender(answer["host"], answer["port"], srtp_key=wrong) as impostor:
        await impostor.send(payloads, interval=0.002)
    _, source = leg_of(service, answer["id"])
    await wait_for(lambda: source.ignored["srtp"] == 20, what="20 unauthenticated")
    leg = await client_leg(service, "S4")
    assert leg["packets_received"] == 0 and leg["state"] == "connecting"
    with RtpSender(answer["host"], answer["port"], srtp_key=answer["srtp_key"]) as sender:
        await sender.send(payloads, interval=0.002)
    await wait_for(lambda: _leg_with(service, "S4", packets_received=20), what="20 received")
    assert ignored(service, "srtp") == 20


async def test_a_senders_own_key_is_used(service: Service) -> None:
    """A sender that picks its own SRTP key (a mediasoup PlainTransport) gives it; the
    answer carries it back and its packets authenticate."""
    own = base64.b64encode(bytes(range(30))).decode()
    status, answer, _ = await attach(service, "S12", {**OPUS, "srtp_key": own})
    assert status == 201, answer
    assert answer["srtp_key"] == own
    with RtpSender(answer["host"], answer["port"], srtp_key=own) as sender:
        await sender.send(client_speech(4.0, 0.4), interval=0.002)
    await wait_for(lambda: _leg_with(service, "S12", packets_received=20), what="20 received")


async def test_rtcp_other_payload_types_and_garbage_are_ignored(service: Service) -> None:
    """RTCP on the same port, another payload type, and datagrams that are not RTP are
    counted by reason and change nothing; the stream around them is measured whole."""
    status, answer, _ = await attach(service, "S5", {**OPUS, "srtp": False})
    assert status == 201, answer
    receiver_report = bytes([0x80, 201, 0, 1]) + (1234).to_bytes(4, "big")
    with RtpSender(answer["host"], answer["port"]) as sender:
        await sender.send(client_speech(4.0, 0.2), interval=0.002)
        for data in (receiver_report, b"", b"\x80", b"\x00" * 40, b"\xbf\x6f" + bytes(10)):
            sender.send_raw(data)
        sender.send_raw(sender.packet(10, b"\x01", payload_type=0))
        await sender.send(client_speech(4.2, 0.2), interval=0.002, first_index=11)
    leg = await wait_for(lambda: _leg_with(service, "S5", packets_received=20))
    _, source = leg_of(service, answer["id"])
    # The packet of another type holds sequence number 10: counted as lost, not measured.
    assert leg["packets_lost"] == 1
    assert source.ignored == {"rtcp": 1, "malformed": 4, "payload_type": 1}


async def test_delete_frees_the_port_for_the_next_attach() -> None:
    """With one port: a second attach gets 503 + Retry-After and leaves nothing; after
    DELETE the port is attached again; a second DELETE is 404."""
    async with run_service(rtp_settings(ports=1)) as service:
        status, answer, _ = await attach(service, "A", {**OPUS, "srtp": False})
        assert status == 201, answer
        status, text, headers = await attach(service, "B", OPUS)
        assert status == 503 and headers["Retry-After"] == "5", text
        assert text == "no free plain-RTP port, try again later\n"
        assert "B" not in service.sessions.sessions and len(service.sessions.legs_by_resource) == 1
        assert await detach(service, "A", answer["id"]) == (204, "")
        assert ports_in_use(service) == 0
        status, again, _ = await attach(service, "B", OPUS)
        assert status == 201 and again["port"] == answer["port"], again
        assert (await detach(service, "A", answer["id"]))[0] == 404
        assert (await detach(service, "B", again["id"]))[0] == 204


async def test_any_session_id_is_attached_and_located(service: Service) -> None:
    """An admin may name any session (ids are the platform's): `/` and spaces included;
    Location and DELETE find it."""
    session = "a/b c%ü"
    status, answer, headers = await attach(service, quote(session, safe=""), OPUS)
    assert status == 201, answer
    assert headers["Location"] == f"/v1/sessions/a%2Fb%20c%25%C3%BC/rtp/{answer['id']}"
    assert leg_of(service, answer["id"])[0].session_id == session
    async with service.http.delete(
        service.url + headers["Location"], headers=service.auth("admin")
    ) as r:
        assert r.status == 204, await r.text()


async def test_a_new_attach_for_a_role_replaces_its_leg(service: Service) -> None:
    """The role's old leg ends as replaced, its port is given back, a reconnect counts."""
    _, first, _ = await attach(service, "S6", OPUS)
    _, second, _ = await attach(service, "S6", OPUS)
    assert first["id"] != second["id"] and ports_in_use(service) == 1
    leg = await client_leg(service, "S6")
    assert leg["reconnects"] == 1
    assert (await detach(service, "S6", first["id"]))[0] == 404


async def test_the_whip_routes_do_not_end_a_plain_rtp_leg(service: Service) -> None:
    _, attached, _ = await attach(service, "S7", OPUS)
    async with service.http.delete(
        f"{service.url}/whip/{attached['id']}", headers=service.auth("admin")
    ) as r:
        assert r.status == 404
    leg, _ = leg_of(service, attached["id"])
    assert leg.state != "ended"
    assert (await detach(service, "S7", attached["id"]))[0] == 204


async def test_a_publish_token_attaches_its_own_role(service: Service) -> None:
    """A publish token's role is used; only that role's token (or admin) may end the leg."""
    therapist = service.auth("publish", "S7", "therapist")
    status, answer, _ = await attach(service, "S7", {"payload_type": 111}, headers=therapist)
    assert status == 201, answer
    assert leg_of(service, answer["id"])[0].role == "therapist"
    assert "srtp_key" in answer  # SRTP unless asked otherwise
    client = ("publish", "S7", "client")
    assert (await detach(service, "S7", answer["id"], token=client))[0] == 403
    other = ("publish", "S8", "therapist")
    assert (await detach(service, "S7", answer["id"], token=other))[0] == 403
    assert (await detach(service, "S8", answer["id"], token=other))[0] == 404
    watch = ("watch", "S7")
    assert (await detach(service, "S7", answer["id"], token=watch))[0] == 403
    mine = ("publish", "S7", "therapist")
    assert await detach(service, "S7", answer["id"], token=mine) == (204, "")
    assert ports_in_use(service) == 0


BAD_BODIES: list[tuple[Any, str]] = [
    ("not json", "body is not JSON"),
    (b"\xff\xfe", "body is not UTF-8"),
    ([OPUS], "body must be a JSON object"),
    ({**OPUS, "payloadType": 111}, "unknown field 'payloadType'"),
    ({**OPUS, "role": "observer"}, "role must be therapist or client"),
    ({**OPUS, "codec": "PCMU"}, "codec must be opus"),
    ({**OPUS, "payload_type": 200}, "payload_type must be"),
    ({**OPUS, "payload_type": 72}, "payload_type must be"),
    ({**OPUS, "payload_type": True}, "payload_type must be"),
    ({**OPUS, "payload_type": 111.0}, "payload_type must be"),
    ({k: v for k, v in OPUS.items() if k != "payload_type"}, "payload_type must be"),
    ({**OPUS, "clock_rate": 8000}, "clock_rate must be 48000"),
    ({**OPUS, "srtp": "yes"}, "srtp must be true or false"),
    ({**OPUS, "srtp_key": base64.b64encode(bytes(29)).decode()}, "srtp_key must be base64 of 30"),
    ({**OPUS, "srtp_key": "A" * 39 + "!"}, "srtp_key must be base64 of 30"),
    ({**OPUS, "srtp_key": "٣" * 40}, "srtp_key must be base64 of 30"),
    ({**OPUS, "srtp_key": 30}, "srtp_key must be base64 of 30"),
    ({**OPUS, "srtp": False, "srtp_key": "A" * 40}, "srtp_key given with srtp false"),
    ('{"role": "client", "payload_type": NaN}', "NaN is not a JSON number"),
    ('{"payload_type": 111, "role": "client", "role": "client"}', "field 'role' given twice"),
    ("[" * 5000 + "]" * 5000, "body larger than 4096 bytes"),
    ({"payload_type": 111}, "role is required with an admin token"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES)
async def test_bad_bodies_are_refused_in_one_line_and_leave_nothing(
    service: Service, body: Any, reason: str
) -> None:
    """400 (413 for the large one) with the reason; no session, leg or port left."""
    status, text, _ = await attach(service, "bad", body)
    assert status in (400, 413) and text.startswith(reason) and text.count("\n") == 1, text
    assert not service.sessions.sessions and not service.sessions.legs_by_resource
    assert ports_in_use(service) == 0


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no token", 401),
        ("watch token", 403),
        ("publish token of another session", 403),
        ("publish token of another role", 403),
        ("text/plain", 415),
        ("long session id", 400),
    ],
)
async def test_bad_requests_are_refused_and_leave_nothing(
    service: Service, case: str, status: int
) -> None:
    session, content_type = "S9", "application/json"
    headers = {
        "no token": {},
        "watch token": service.auth("watch", "S9"),
        "publish token of another session": service.auth("publish", "S10", "client"),
        "publish token of another role": service.auth("publish", "S9", "therapist"),
    }.get(case, service.auth("admin"))
    if case == "text/plain":
        content_type = "text/plain"
    if case == "long session id":
        session = "s" * 129
    sent = {"Content-Type": content_type, **headers}
    url = f"{service.url}/v1/sessions/{session}/rtp"
    async with service.http.post(url, data=json.dumps(OPUS), headers=sent) as r:
        assert r.status == status, await r.text()
        assert (await r.text()).count("\n") == 1
    assert not service.sessions.sessions and ports_in_use(service) == 0


async def test_a_leg_that_never_receives_is_reaped_and_frees_its_port() -> None:
    """No packet within the connect timeout: the leg ends never_connected, the port is free."""
    async with run_service(rtp_settings(connect_timeout_seconds=0.3)) as service:
        _, answer, _ = await attach(service, "S11", OPUS)
        await wait_for(lambda: ports_in_use(service) == 0, what="the port freed")
        assert (await detach(service, "S11", answer["id"]))[0] == 404


async def test_shutdown_frees_every_port() -> None:
    async with run_service(rtp_settings()) as service:
        for session in ("a", "b", "c"):
            assert (await attach(service, session, OPUS))[0] == 201
        pool = service.app[rtp_ports_key]
        assert pool.in_use == 3
    assert pool.in_use == 0


def test_the_documented_example_is_accepted() -> None:
    """The contract's example body is what the parser takes."""
    attach = parse_attach(json.dumps(EXAMPLE_ATTACH).encode())
    assert attach.role == "client" and attach.params.payload_type == 111 and attach.params.srtp
    check("RtpAttachRequest", EXAMPLE_ATTACH)
