"""POST /v1/sessions/{id}/rtp with any JSON: 201 or a one-line 4xx, never a 5xx; a refusal
leaves no session, leg, task or port behind, and an accepted attach is freed by DELETE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from qualmon.service.keys import rtp_ports_key
from qualmon.service.openapi.rtp import EXAMPLE_ATTACH
from qualmon.service.rtp_routes import FIELDS, AttachError, parse_attach

from ..conftest import Service, wait_for
from ..fuzz_json import json_trees, mutated_json, to_json
from ..fuzzing import Allocation, examples, fuzz_service, new_tasks, one_line_refusal
from .test_rtp_routes import rtp_settings

pytestmark = pytest.mark.fuzz

BASES = (
    EXAMPLE_ATTACH,
    {"role": "therapist", "payload_type": 96},
    {"role": "client", "payload_type": 0, "srtp": False, "codec": "OPUS"},
    {"role": "client", "payload_type": 100, "srtp_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk"},
)
"Valid bodies, changed by the fuzzer anywhere inside."
KEYS = (*FIELDS, "payloadType", "ssrc")


def attach_bodies() -> st.SearchStrategy[str]:
    """Real bodies changed anywhere (mostly), or JSON of any shape, or any text."""
    return st.one_of(
        mutated_json(BASES, KEYS),
        mutated_json(BASES, KEYS, max_changes=1),
        json_trees(KEYS).map(to_json),
        st.text(max_size=40),
    )


@examples()
@given(body=attach_bodies())
@example(body='{"payload_type": 1' + "0" * 5000 + "}")
@example(body="[" * 3000 + "]" * 3000)
def test_any_json_is_an_attach_request_or_a_one_line_refusal(body: str) -> None:
    """parse_attach returns a request within the documented ranges or raises AttachError in
    one line, never another exception."""
    try:
        asked = parse_attach(body.encode())
    except AttachError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        return
    params = asked.params
    assert type(params.payload_type) is int and 0 <= params.payload_type <= 127
    assert not 64 <= params.payload_type <= 95
    assert params.clock_rate == 48000 and isinstance(params.srtp, bool)
    assert params.srtp_key is None or (params.srtp and len(params.srtp_key) == 30)
    assert asked.role in (None, "therapist", "client")


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    # Ended sessions are not compacted during the run: what a refusal left is then exactly
    # what the registry holds before and after it.
    async with fuzz_service(rtp_settings(ports=4, settle_seconds=3600.0)) as running:
        yield running


@examples(60)
@given(body=attach_bodies(), session=st.sampled_from(["fz", "fz-2"]))
async def test_post_rtp_attaches_or_refuses_and_a_refusal_allocates_nothing(
    service: Service, body: str, session: str
) -> None:
    """Every body: a 201 (its leg then deleted, its port free) or a one-line 4xx after
    which there is no new session, leg, task or bound port."""
    pool = service.app[rtp_ports_key]
    before = Allocation.of(service)
    tasks_before = set(asyncio.all_tasks())
    headers = {"Content-Type": "application/json", **service.auth("admin")}
    url = f"{service.url}/v1/sessions/{session}/rtp"
    async with service.http.post(url, data=body.encode(), headers=headers) as r:
        status, text = r.status, await r.text()
    event(f"status {status}")
    assert status < 500, text
    if status == 201:
        answer = json.loads(text)
        assert pool.in_use == 1
        async with service.http.delete(f"{url}/{answer['id']}", headers=headers) as r:
            assert r.status == 204, await r.text()
    else:
        assert one_line_refusal(status, text), (status, text)
        assert Allocation.of(service) == before
    assert pool.in_use == 0
    await wait_for(lambda: not new_tasks(tasks_before), what="no task left from the request")
    assert not service.sessions.legs_by_resource
