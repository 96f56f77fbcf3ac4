"""Corpus fixtures through the whole path in real time: WHIP publishers → a qualmon service.

Each fixture is one session of two legs replaying its Opus packets (the client leg with the
fixture's loss or outage, applied by the publisher), every leg started in the same event-loop
iteration so they share a timeline. When every leg's audio has been heard to its end the
publishers DELETE their legs (which settles the voice classifier's held frames) and the
session's segments, on the session clock, are moved onto the truth's timeline (0 = the
dialogue's start = the session's first classified frame) and scored like the offline path.
The service runs in this process, so the segments are read straight from its sessions.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from aiohttp import web

from ..config import Settings
from ..core.speech import Segment
from ..service.app import create_app
from ..service.auth import issue_token
from ..service.keys import sessions_key
from ..sessions.registry import SessionRegistry
from ..sessions.session import Session
from ..sessions.snapshot import RoleSnapshot
from .audio import EncodedAudioTrack
from .corpus_fixtures import CorpusFixture
from .dialogue import ROLES
from .publisher import WhipPublisher
from .speech_score import SpeechScore, score_segments

HEARD_TIMEOUT_SECONDS = 60.0
"How long after its audio should have ended a leg may take to be heard to the end (a slow,"
" shared runner falls behind real time; the truth does not move)."


@dataclass(frozen=True)
class WhipRun:
    """A fixture's score over WHIP and how much the publisher dropped."""

    score: SpeechScore
    dropped_packets: int
    "Packets the client publisher dropped (the +loss5 fixtures)."
    roles: Mapping[str, RoleSnapshot]
    "The session's per-role figures when its legs had ended (dropouts, dropouts in speech)."


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[tuple[str, SessionRegistry]]:
    """qualmon's app on a free loopback port: its base URL and its live sessions."""
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app[sessions_key]
    finally:
        await runner.cleanup()


def corpus_settings(**overrides: object) -> Settings:
    """Service settings for corpus runs: loopback ICE, reports in memory."""
    base = Settings(secret=secrets.token_hex(32), ice_addresses=("127.0.0.1",), db_path=":memory:")
    return replace(base, **overrides)  # type: ignore[arg-type]


async def run_fixtures(
    fixtures: Sequence[CorpusFixture], *, settings: Settings | None = None
) -> list[WhipRun]:
    """Publish every fixture at once, in real time, and score each session."""
    settings = settings or corpus_settings()
    async with running_service(settings) as (url, registry):
        publishers: dict[str, list[WhipPublisher]] = {}
        try:
            for fixture in fixtures:
                publishers[fixture.name] = await _connect(url, settings.secret, fixture)
            started = time.monotonic()
            for legs in publishers.values():
                for publisher in legs:
                    if publisher.impairment is not None:
                        publisher.impairment.installed_at = started
                    publisher.track.resume()  # type: ignore[attr-defined]
            sessions = {f.name: registry.sessions[session_id(f)] for f in fixtures}
            longest = max(f.seconds for f in fixtures)
            await asyncio.sleep(longest)
            await _until_heard(sessions, fixtures, HEARD_TIMEOUT_SECONDS)
            runs = []
            for fixture in fixtures:
                legs = publishers.pop(fixture.name)
                for publisher in legs:
                    await publisher.stop()
                client = legs[ROLES.index("client")]
                dropped = (
                    len(client.impairment.dropped_sequence_numbers) if client.impairment else 0
                )
                session = sessions[fixture.name]
                await _until_ended(session)
                roles = session.snapshot(time.monotonic()).roles
                runs.append(WhipRun(_score(session, fixture), dropped, roles))
            return runs
        finally:
            for legs in publishers.values():
                for publisher in legs:
                    await publisher.stop(delete=False)


def session_id(fixture: CorpusFixture) -> str:
    """The fixture's name as a session id ("balanced/room+loss5" → "balanced-room-loss5")."""
    return fixture.name.replace("/", "-").replace("+", "-")


async def _connect(url: str, secret: str, fixture: CorpusFixture) -> list[WhipPublisher]:
    legs = []
    for role in ROLES:
        token = issue_token(
            secret, scope="publish", session=session_id(fixture), role=role, ttl_seconds=3600
        )
        publisher = WhipPublisher(
            url=f"{url}/whip",
            token=token,
            track=EncodedAudioTrack(fixture.packets[role], loop_forever=False),
            impairment=fixture.impairments.get(role),
            hold_audio=True,
        )
        legs.append(publisher)
        await publisher.start()
    return legs


async def _until_heard(
    sessions: dict[str, Session], fixtures: Sequence[CorpusFixture], timeout_seconds: float
) -> None:
    deadline = time.monotonic() + timeout_seconds
    while True:
        behind = []
        for fixture in fixtures:
            for role in ROLES:
                segmenter = sessions[fixture.name].slots[role].segmenter
                first, last = segmenter.first_frame_at, segmenter.last_frame_end
                if first is None or last is None or last - first < fixture.seconds - 0.5:
                    behind.append(f"{fixture.name}:{role}")
        if not behind:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not heard to the end: {', '.join(behind)}")
        await asyncio.sleep(0.2)


async def _until_ended(session: Session) -> None:
    """DELETE has answered; the legs' closing (and their last dropout verdicts) follows."""
    for slot in session.slots.values():
        if slot.leg is not None:
            await slot.leg.ended.wait()


def _score(session: Session, fixture: CorpusFixture) -> SpeechScore:
    segmenters = {role: session.slots[role].segmenter for role in ROLES}
    origin = min(g.first_frame_at for g in segmenters.values() if g.first_frame_at is not None)
    segments = {
        role: [
            Segment(s.start - origin, s.end - origin, s.unknown_seconds)
            for s in segmenter.all_segments()
        ]
        for role, segmenter in segmenters.items()
    }
    return score_segments(fixture.name, fixture.truth, segments)
