"""Media goes straight to the owner: two real processes with different ICE addresses, the
offer posted to the one that does not own the session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from qualmon.media.ice import host_addresses, selected_pair
from qualmon.service.auth import issue_token
from qualmon.sim.publisher import WhipPublisher

from ..conftest import SECRET, wait_for
from .serving import CHECKOUT, free_port

pytestmark = pytest.mark.realtime

ADDRESSES = {"a": "127.0.0.1", "b": "127.0.0.2"}


@contextlib.asynccontextmanager
async def two_processes(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Instances a and b as `python -m tests.service.relay_serve`; b owns session m1."""
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in ADDRESSES}
    procs = []
    try:
        for name, address in ADDRESSES.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
            env.update(
                QUALMON_SECRET=SECRET,
                QUALMON_DB=str(tmp_path / f"{name}.db"),
                QUALMON_HOST="127.0.0.1",
                QUALMON_PORT=urls[name].rsplit(":", 1)[1],
                QUALMON_ICE_ADDRESSES=address,
                RELAY_TEST_ME=name,
                RELAY_TEST_URLS=json.dumps(urls),
                RELAY_TEST_OWNED=json.dumps({"m1": "b"}),
                PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")])),
            )
            # Opened once per process and handed to it: not worth a thread.
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: ASYNC230
            procs.append(
                (
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "tests.service.relay_serve",
                        env=env,
                        cwd=CHECKOUT,
                        stdout=log,
                        stderr=log,
                    ),
                    log,
                )
            )
        async with aiohttp.ClientSession() as http:
            for name, url in urls.items():

                async def healthy(url: str = url) -> bool:
                    try:
                        async with http.get(url + "/healthz") as r:
                            return r.status == 200
                    except aiohttp.ClientError:
                        return False

                await wait_for(healthy, timeout=30.0, what=f"instance {name} to start")
        yield urls
    finally:
        for proc, log in procs:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
            log.close()


async def test_the_answer_carries_the_owners_candidates(tmp_path: Path) -> None:
    """Posted to a (ICE on 127.0.0.1), answered by b (ICE on 127.0.0.2): every candidate of
    the answer is b's address, and the selected pair's remote end is b."""
    async with two_processes(tmp_path) as urls:
        token = issue_token(SECRET, scope="publish", session="m1", role="client")
        publisher = WhipPublisher(url=urls["a"] + "/whip", token=token)
        try:
            with host_addresses(["127.0.0.1"]):
                await publisher.start(timeout_seconds=30.0)
            answer = publisher.pc.remoteDescription.sdp
            candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
            assert candidates and all(c.split()[4] == ADDRESSES["b"] for c in candidates)
            pair = selected_pair(publisher.pc)
            assert pair is not None and pair.remote_candidate.host == ADDRESSES["b"]
            async with aiohttp.ClientSession() as http:
                admin = {
                    "Authorization": "Bearer " + issue_token(SECRET, scope="admin"),
                }
                async with http.get(
                    urls["b"] + "/v1/sessions", params={"scope": "local"}, headers=admin
                ) as r:
                    assert [s["id"] for s in (await r.json())["sessions"]] == ["m1"]
                async with http.get(
                    urls["a"] + "/v1/sessions", params={"scope": "local"}, headers=admin
                ) as r:
                    assert (await r.json())["sessions"] == []
        finally:
            await publisher.stop()
