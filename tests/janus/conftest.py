"""A qualmon service and a real Janus that knows it: Janus' HTTP port is chosen first (it is
qualmon's QUALMON_JANUS_URL), qualmon starts (it receives Janus' events from boot on), then
Janus with its event handler posting to qualmon; stopped in the reverse order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from ..conftest import Service, make_settings, run_service
from .participant import Participant
from .server import ADMIN_KEY, Janus, free_port, running_janus, unavailable

EVENTS_SECRET = "janus-events-secret-for-tests"


@dataclass
class JanusRig:
    service: Service
    janus: Janus
    http: aiohttp.ClientSession
    participants: list[Participant]

    def participant(self, room: int, participant_id: int) -> Participant:
        joined = Participant(self.http, self.janus.url, room=room, participant_id=participant_id)
        self.participants.append(joined)
        return joined

    async def attach(self, session: str, **body: Any) -> tuple[int, dict[str, Any] | str]:
        async with self.service.http.post(
            f"{self.service.url}/v1/sessions/{session}/janus",
            json=body,
            headers=self.service.auth("admin"),
        ) as r:
            if r.status == 201:
                return r.status, await r.json()
            return r.status, await r.text()


@pytest.fixture
async def rig() -> AsyncIterator[JanusRig]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    port = free_port()
    settings = make_settings(
        janus_url=f"http://127.0.0.1:{port}/janus",
        janus_admin_key=ADMIN_KEY,
        janus_events_secret=EVENTS_SECRET,
    )
    async with run_service(settings) as service:
        backend = service.url + "/v1/integrations/janus/events"
        async with (
            running_janus(backend=backend, events_secret=EVENTS_SECRET, http_port=port) as janus,
            aiohttp.ClientSession() as http,
        ):
            rig = JanusRig(service, janus, http, [])
            try:
                yield rig
            finally:
                for participant in rig.participants:
                    await participant.leave()


Waiter = Callable[..., Awaitable[Any]]
