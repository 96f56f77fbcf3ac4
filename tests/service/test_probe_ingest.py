"""POST /v1/sessions/{id}/stats: strict validation, the heard block, probe-only sessions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qualmon.service.keys import limiter_key
from qualmon.service.probe_ingest import MAX_SAMPLE_BYTES

from ..conftest import Service, make_settings, run_service, wait_for
from ..core.test_heard import chrome_dump

T0 = 1_764_000_000_000


def sample(i: int, *, audible_per_interval: int = 0, stream: str = "IT01A") -> dict[str, Any]:
    """The i-th sample of a browser receiving 20 ms packets, 2 s apart (cumulative)."""
    total = 96_000 * (i + 1)
    concealed = audible_per_interval * i
    return {
        "timestamp": T0 + 2000 * i,
        "stats": [
            {
                "type": "inbound-rtp",
                "kind": "audio",
                "id": stream,
                "packetsReceived": 100 * (i + 1),
                "packetsLost": i,
                "jitter": 0.003,
                "concealedSamples": concealed,
                "silentConcealedSamples": 0,
                "concealmentEvents": i if audible_per_interval else 0,
                "totalSamplesReceived": total,
                "jitterBufferDelay": 0.05 * total,
                "jitterBufferEmittedCount": total,
                "audioLevel": 0.02,
            },
            {"type": "remote-inbound-rtp", "kind": "audio", "id": "RI", "fractionLost": 0.0},
            {"type": "candidate-pair", "id": "CP", "nominated": True, "currentRoundTripTime": 0.04},
        ],
    }


async def post(
    service: Service,
    session: str,
    body: Any,
    *,
    token: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, str, dict[str, str]]:
    data = body if isinstance(body, bytes | str | AsyncIterator) else json.dumps(body)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    async with service.http.post(
        f"{service.url}/v1/sessions/{session}/stats", data=data, headers=headers
    ) as r:
        return r.status, await r.text(), dict(r.headers)


async def status_of(service: Service, session: str) -> int:
    async with service.http.get(
        f"{service.url}/v1/sessions/{session}", headers=service.auth("admin")
    ) as r:
        return r.status


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    """The session JSON without what moves by itself (time since the last sample)."""
    for leg in doc["legs"].values():
        if leg and leg.get("heard"):
            leg["heard"].pop("seconds_since_last_sample")
    return doc


@pytest.fixture
async def unlimited(service: Service) -> AsyncIterator[Service]:
    """The service with the per-leg rate limit off, so a test can send samples back to back."""
    limiter = service.app[limiter_key]
    limiter.min_interval_seconds = 0.0
    yield service
    limiter.min_interval_seconds = 0.5


def accepted(service: Service) -> float | None:
    return service.metrics.registry.get_sample_value(
        "qualmon_probe_samples_total", {"result": "accepted"}
    )


def rejected(service: Service) -> float | None:
    return service.metrics.registry.get_sample_value(
        "qualmon_probe_samples_total", {"result": "rejected"}
    )


async def test_a_session_from_probe_data_alone(unlimited: Service) -> None:
    """The first valid sample creates the session; the role renders as probe_only."""
    service = unlimited
    token = service.token("publish", "p1", "client")
    assert await status_of(service, "p1") == 404
    for i in range(3):
        status, text, headers = await post(
            service, "p1", sample(i, audible_per_interval=1920), token=token
        )
        assert status == 204, text
        assert headers["Access-Control-Allow-Origin"] == "*"
    doc = await service.session_json("p1")
    assert doc["state"] == "live"
    client = doc["legs"]["client"]
    assert client["state"] == "probe_only"
    assert client["packets_received"] == 0 and client["rtt_seconds"] is None
    heard = client["heard"]
    assert heard["samples"] == 3
    assert heard["packets_received"] == 300
    assert heard["total_samples_received"] == 3 * 96_000
    assert heard["audible_concealment_ratio"] == pytest.approx(0.02)
    assert heard["loss_ratio"] == pytest.approx(2 / 202)
    assert heard["jitter_buffer_delay_seconds"] == pytest.approx(0.05)
    assert heard["rtt_seconds"] == 0.04
    assert 4.0 < heard["mos"] <= 4.5
    assert accepted(service) == 3
    assert (
        service.metrics.registry.get_sample_value(
            "qualmon_heard_concealment_ratio_count", {"role": "client"}
        )
        == 2
    )


async def test_audible_concealment_raises_a_warning(unlimited: Service) -> None:
    """5 % audible concealment over the window raises audible_concealment for that role."""
    service = unlimited
    token = service.token("publish", "p2", "therapist")
    for i in range(3):
        status, text, _ = await post(
            service, "p2", sample(i, audible_per_interval=4800), token=token
        )
        assert status == 204, text

    async def raised() -> list[dict[str, Any]]:
        doc = await service.session_json("p2")
        return [w for w in doc["warnings"] if w["kind"] == "audible_concealment"]

    (warning,) = await wait_for(raised, timeout=5.0, what="audible_concealment warning")
    assert warning["role"] == "therapist"
    assert warning["value"] == pytest.approx(0.05)
    assert warning["therapist_text"].startswith("Your connection is losing")


async def test_bad_samples_change_nothing(unlimited: Service) -> None:
    """Wrong types, decreasing counters, oversize, wrong content type, wrong token → 4xx,
    and the session JSON stays as it was."""
    service = unlimited
    token = service.token("publish", "p3", "client")
    assert (await post(service, "p3", sample(0), token=token))[0] == 204
    assert (await post(service, "p3", sample(1), token=token))[0] == 204
    before = stable(await service.session_json("p3"))
    decreasing = sample(2)
    decreasing["stats"][0]["packetsReceived"] = 150
    wrong_type = sample(2)
    wrong_type["stats"][0]["jitter"] = "low"
    reset = sample(2)
    reset["stats"][0]["totalSamplesReceived"] = 960  # a counter reset under the same id
    padded = sample(2)
    padded["stats"][0]["id"] = "x" * MAX_SAMPLE_BYTES
    cases: list[tuple[Any, dict[str, Any], int, str]] = [
        (wrong_type, {}, 400, "bad sample: jitter must be a number"),
        (decreasing, {}, 400, "bad sample: packetsReceived went down"),
        (reset, {}, 400, "totalSamplesReceived went down"),
        (sample(1), {}, 400, "timestamp must increase"),
        ("{not json", {}, 400, "not valid JSON"),
        (padded, {}, 413, "larger than 16384 bytes"),
        (sample(2), {"content_type": "text/plain"}, 415, "application/json"),
        (sample(2), {"token": None}, 401, "missing bearer token"),
        (sample(2), {"token": token + "x"}, 401, "invalid token"),
        (sample(2), {"token": service.token("publish", "other", "client")}, 403, "another"),
        (sample(2), {"token": service.token("watch", "p3")}, 403, "scope 'watch'"),
        (sample(2), {"token": service.token("admin")}, 403, "scope 'admin'"),
    ]
    for body, options, code, reason in cases:
        options.setdefault("token", token)
        status, text, headers = await post(service, "p3", body, **options)
        assert (status, reason in text) == (code, True), (code, reason, text)
        assert "\n" not in text.strip()
        assert headers["Access-Control-Allow-Origin"] == "*"
    assert stable(await service.session_json("p3")) == before
    assert rejected(service) == len(cases)
    # A bad first sample creates no session.
    status, _, _ = await post(
        service, "p4", wrong_type, token=service.token("publish", "p4", "client")
    )
    assert status == 400
    assert await status_of(service, "p4") == 404


async def test_too_fast_is_429(service: Service) -> None:
    """A second sample within 0.5 s for the same participant → 429 with Retry-After; the
    other participant of the session is limited separately."""
    client = service.token("publish", "p5", "client")
    assert (await post(service, "p5", sample(0), token=client))[0] == 204
    status, text, headers = await post(service, "p5", sample(1), token=client)
    assert status == 429, text
    assert headers["Retry-After"] == "1"
    therapist = service.token("publish", "p5", "therapist")
    assert (await post(service, "p5", sample(0), token=therapist))[0] == 204
    heard = (await service.session_json("p5"))["legs"]["client"]["heard"]
    assert heard["samples"] == 1


async def test_unknown_session_and_watch_tokens(service: Service) -> None:
    """A watch token reads (404 for an unknown session) but never posts samples."""
    watch = service.token("watch", "nosuch")
    async with service.http.get(
        f"{service.url}/v1/sessions/nosuch", headers={"Authorization": "Bearer " + watch}
    ) as r:
        assert r.status == 404
    assert (await post(service, "nosuch", sample(0), token=watch))[0] == 403
    assert await status_of(service, "nosuch") == 404


async def test_preflight_and_probe_js(service: Service) -> None:
    """Browsers may post from any origin (bearer tokens, no cookies); probe.js is served."""
    async with service.http.options(
        f"{service.url}/v1/sessions/x/stats",
        headers={
            "Origin": "https://platform.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    ) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    async with service.http.get(service.url + "/probe.js") as r:
        assert r.status == 200
        assert r.content_type == "text/javascript"
        assert "QualmonProbe" in await r.text()


async def test_a_probe_only_session_ends_when_the_probe_stops() -> None:
    """Without legs, a session lives as long as its probe sends (lost_after_seconds)."""
    async with run_service(make_settings(lost_after_seconds=1.0)) as service:
        token = service.token("publish", "p6", "client")
        assert (await post(service, "p6", sample(0), token=token))[0] == 204

        async def ended() -> bool:
            return (await service.session_json("p6"))["state"] == "ended"

        await wait_for(ended, timeout=5.0, what="probe-only session ended")
        # The next sample starts a new session under the same id.
        assert (await post(service, "p6", sample(1), token=token))[0] == 204
        doc = await service.session_json("p6")
        assert doc["state"] == "live" and doc["legs"]["client"]["heard"]["samples"] == 1


async def in_two_parts(data: bytes, pause: float = 0.2) -> AsyncIterator[bytes]:
    """A body sent as two writes with a pause between: two TCP segments for the server."""
    half = len(data) // 2
    yield data[:half]
    await asyncio.sleep(pause)
    yield data[half:]


async def test_a_sample_in_two_segments_is_read_whole(service: Service) -> None:
    """A body still arriving when the handler starts reading is read to its end, not cut."""
    token = service.token("publish", "p7", "client")
    body = json.dumps(sample(0)).encode()
    status, text, _ = await post(service, "p7", in_two_parts(body), token=token)
    assert status == 204, text
    assert (await service.session_json("p7"))["legs"]["client"]["heard"]["samples"] == 1


async def test_an_oversize_chunked_sample_is_413(service: Service) -> None:
    """Without a Content-Length the cap is enforced while reading."""
    padded = sample(0)
    padded["stats"][0]["id"] = "x" * MAX_SAMPLE_BYTES
    token = service.token("publish", "p8", "client")
    status, text, headers = await post(
        service, "p8", in_two_parts(json.dumps(padded).encode()), token=token
    )
    assert status == 413, text
    assert "larger than 16384 bytes" in text
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert rejected(service) == 1
    assert await status_of(service, "p8") == 404


async def test_a_compacted_session_is_still_served_and_its_stream_ends() -> None:
    """Once an ended session is compacted, the API serves its last snapshot, the list
    includes it, the report is found, and an event stream gives its last state and ends."""
    settings = make_settings(lost_after_seconds=1.0, settle_seconds=0.5)
    async with run_service(settings) as service:
        token = service.token("publish", "p7", "client")
        assert (await post(service, "p7", sample(0), token=token))[0] == 204
        registry = service.sessions
        await wait_for(lambda: "p7" in registry.ended, timeout=10.0, what="p7 compacted")
        assert "p7" not in registry.sessions
        doc = await service.session_json("p7")
        assert doc["state"] == "ended" and doc["legs"]["client"]["heard"]["samples"] == 1
        async with service.http.get(
            f"{service.url}/v1/sessions", headers=service.auth("admin")
        ) as r:
            assert [s["id"] for s in (await r.json())["sessions"]] == ["p7"]
        async with service.http.get(
            f"{service.url}/v1/sessions/p7/report", headers=service.auth("admin")
        ) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["state"] == "ended"
        async with service.http.get(
            f"{service.url}/v1/sessions/p7/events", headers=service.auth("admin")
        ) as r:
            assert r.status == 200
            body = await asyncio.wait_for(r.text(), 10.0)  # the stream ends by itself
        assert body.startswith("event: snapshot\n") and '"state": "ended"' in body


async def test_a_whole_chrome_getstats_dump_is_stored(service: Service) -> None:
    """What a browser's getStats gives, unfiltered (every type, fields added in any release),
    is a 204 and the heard block holds its inbound audio numbers; without its inbound audio
    entry the same dump is a 400 that says so."""
    entries = chrome_dump()
    token = service.token("publish", "p9", "client")
    no_audio = [e for e in entries if not (e["type"] == "inbound-rtp" and e["kind"] == "audio")]
    status, text, _ = await post(service, "p9", {"timestamp": T0, "stats": no_audio}, token=token)
    assert (status, text) == (400, "bad sample: no inbound-rtp audio entry\n")
    assert await status_of(service, "p9") == 404
    service.app[limiter_key].min_interval_seconds = 0.0
    status, text, _ = await post(service, "p9", {"timestamp": T0, "stats": entries}, token=token)
    assert status == 204, text
    heard = (await service.session_json("p9"))["legs"]["client"]["heard"]
    assert heard["packets_received"] == 4712
    assert heard["packets_lost"] == 23
    assert heard["concealed_samples"] == 15360
    assert heard["silent_concealed_samples"] == 3840
    assert heard["total_samples_received"] == 4531200
    assert heard["jitter_seconds"] == 0.006
    assert heard["rtt_seconds"] == 0.043
    assert heard["remote_fraction_lost"] == 0.0117
    assert heard["audio_level"] == 0.0732
