"""POST /v1/sessions/{id}/stats with any JSON: 204 or a one-line 4xx, never a 5xx; a refused
sample stores nothing, and the session JSON stays valid JSON."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from qualmon.service.keys import limiter_key

from ..conftest import Service, make_settings
from ..core.test_fuzz_heard import sample_bodies
from ..core.test_heard import T0, inbound
from ..fuzzing import examples, fuzz_service, one_line_refusal

pytestmark = pytest.mark.fuzz

PREVIOUS = {
    "timestamp": T0 - 2000,
    "stats": [
        inbound(
            packetsReceived=900,
            packetsLost=9,
            concealedSamples=0,
            silentConcealedSamples=0,
            concealmentEvents=0,
            totalSamplesReceived=864_000,
            jitterBufferDelay=4000.0,
            jitterBufferEmittedCount=86_000,
        )
    ],
}
"A sample 2 s before the fuzz bases (same stream id as most): they are checked against it."
_session_ids = (f"st{i}" for i in itertools.count())


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    # Probe-only sessions end 1 s after their sample and are then forgotten at once, so a
    # long run does not pile them up; each example uses a session id of its own.
    settings = make_settings(lost_after_seconds=1.0, ended_retention_seconds=0.0)
    async with fuzz_service(settings) as running:
        running.app[limiter_key].min_interval_seconds = 0.0
        yield running


async def post(service: Service, session: str, body: str | bytes) -> tuple[int, str]:
    headers = {
        "Content-Type": "application/json",
        **service.auth("publish", session, "client"),
    }
    url = f"{service.url}/v1/sessions/{session}/stats"
    async with service.http.post(url, data=body, headers=headers) as r:
        return r.status, await r.text()


def stored(service: Service, session: str) -> tuple[int, int] | None:
    """(samples, identity of the last sample) the client's tracker holds, None: no session."""
    found = service.sessions.sessions.get(session)
    tracker = found.slots["client"].heard if found and "client" in found.slots else None
    return (tracker.samples, id(tracker.last)) if tracker else None


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the session JSON")

    return json.loads(text, parse_constant=refuse)


@examples(60)
@given(body=sample_bodies(), after_a_sample=st.booleans())
@example(
    body='{"timestamp": 1764000000000, "stats": [{"type": "inbound-rtp", "kind": "audio",'
    ' "id": "A", "packetsReceived": 1, "jitter": 1' + "0" * 400 + "}]}",
    after_a_sample=False,
)
async def test_any_json_sample_is_stored_or_refused_in_one_line(
    service: Service, body: str, after_a_sample: bool
) -> None:
    """Any JSON (deep, huge numbers, NaN/Infinity, "٣", repeated keys; alone or after a valid
    sample of the same participant): 204, or a 4xx in one line that stores nothing."""
    session = next(_session_ids)
    if after_a_sample:
        status, text = await post(service, session, json.dumps(PREVIOUS))
        assert status == 204, text
    before = stored(service, session)
    status, text = await post(service, session, body.encode())
    event(f"status {status}")
    if status == 204:
        after = stored(service, session)
        assert after is not None and after[0] == (before[0] + 1 if before else 1)
    else:
        assert one_line_refusal(status, text), (status, text)
        assert stored(service, session) == before
    if stored(service, session) is not None:
        async with service.http.get(
            f"{service.url}/v1/sessions/{session}", headers=service.auth("admin")
        ) as r:
            assert r.status == 200
            heard = strict_json(await r.text())["legs"]["client"]["heard"]
        assert heard["samples"] == stored(service, session)[0]  # type: ignore[index]
