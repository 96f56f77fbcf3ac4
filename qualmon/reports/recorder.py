"""Turns live sessions into stored reports: samples each second, checkpoints, final save."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..core.rtp_stats import Dropout
from ..core.speech import SpeechSegmenter
from ..sessions.leg import Leg
from ..sessions.observer import SessionEnd, SessionObserver
from ..sessions.resume import Resumed
from ..sessions.session import Session
from ..warnings.video import leg_video
from .async_store import AsyncReportStore
from .model import (
    BUCKET_SECONDS,
    Checkpoint,
    DropoutMark,
    LegAggregate,
    ReportEndReason,
    SpeechSpan,
    TimelinePoint,
    turns_json,
)
from .tracks import Bucket, Mark, SessionState, Track, aggregate, timeline_point

log = logging.getLogger(__name__)


class ReportObserver:
    """Told once per saved session (the Prometheus exporter); same mechanism as
    `sessions.observer`."""

    def on_session_report(self, duration_seconds: float, degraded_ratio: float) -> None:
        """A session's final report was saved."""


class ReportRecorder(SessionObserver):
    """Observes the session registry (a sample a second, the end) and writes to the store."""

    def __init__(
        self,
        store: AsyncReportStore,
        *,
        observer: ReportObserver | None = None,
        checkpoint_seconds: float = 10.0,
        leg_close_timeout_seconds: float = 6.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._observer = observer
        self._checkpoint_seconds = checkpoint_seconds
        self._leg_close_timeout = leg_close_timeout_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        # Keyed by (id, start): a platform may reuse an id after a session ended.
        self._states: dict[tuple[str, float], SessionState] = {}
        self._finishing: dict[tuple[str, float], asyncio.Task[None]] = {}

    # -- SessionObserver -------------------------------------------------------

    def on_session_sample(self, session: Session, now: float) -> None:
        state = self._state(session, now)
        index = int((now - state.origin) // BUCKET_SECONDS)
        with_media: set[str] = set()
        for role, slot in session.slots.items():
            track = state.tracks.setdefault(role, Track())
            leg = slot.leg
            if leg is None:
                continue
            self._follow(track, leg, slot.segmenter, state, index)
            if leg.state not in ("live", "stalled"):
                continue
            snap = leg.snapshot(now)
            if not snap.packets_received:
                continue
            with_media.add(role)
            bucket = track.buckets.setdefault(index, Bucket(index))
            if leg.state == "stalled":
                # No media: the jitter and MOS of the last packets say nothing about now.
                bucket.stalled = True
                continue
            bucket.add(snap.recent_loss_ratio, snap.jitter_seconds, snap.rtt_seconds, snap.mos)
            video = leg_video(leg, now)
            if video is not None:
                track.video_sample(leg, video, bucket)
            track.jitter.add(snap.jitter_seconds)
            if snap.rtt_seconds is not None:
                track.rtt.add(snap.rtt_seconds)
            if snap.mos is not None:
                track.mos_min = snap.mos if track.mos_min is None else min(track.mos_min, snap.mos)
                track.mos_sum += snap.mos
                track.mos_count += 1
        # A participant's first numbers are saved at once, not up to 10 s later.
        due = (
            state.last_checkpoint is None
            or now - state.last_checkpoint >= self._checkpoint_seconds
            or not with_media <= state.roles_with_media
        )
        if due and self._store.is_open:
            state.roles_with_media = state.roles_with_media | with_media
            self._store.save(self._checkpoint(session, state, now, end_reason=None))

    def on_session_ended(self, ended: SessionEnd) -> None:
        session = ended.session
        task = asyncio.ensure_future(self._finish(session, ended.reason))
        key = _key(session)
        self._finishing[key] = task
        task.add_done_callback(lambda _: self._finishing.pop(key, None))

    # -- on demand and at shutdown -------------------------------------------

    async def checkpoint_now(self, session: Session, *, min_age_seconds: float = 1.0) -> None:
        """Bring a session's stored report up to date: a fresh checkpoint of a live one (at
        most once per min_age), the final save of one that just ended. Returns early when
        the store cannot be written (the report then waits in memory)."""
        finishing = self._finishing.get(_key(session))
        if finishing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(finishing), self._leg_close_timeout + 1)
        now = self._clock()
        state = self._states.get(_key(session))
        if session.live and self._store.is_open:
            state = state or self._state(session, now)
            if state.last_checkpoint is None or now - state.last_checkpoint >= min_age_seconds:
                self._store.save(self._checkpoint(session, state, now, end_reason=None))
        await self.flush()

    async def settle(self, session_id: str, started_at: float | None) -> None:
        """Wait for the final save of a session that ended (if one is under way), then for
        every write queued so far."""
        finishing = self._finishing.get((session_id, started_at)) if started_at else None
        if finishing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(finishing), self._leg_close_timeout + 1)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every write queued so far has landed (or the store fails)."""
        if self._store.is_open:
            await self._store.flush()

    async def drain(self, timeout_seconds: float) -> None:
        """Let final saves of ended sessions finish (shutdown)."""
        if self._finishing:
            await asyncio.wait(list(self._finishing.values()), timeout=timeout_seconds)
        await self.flush()

    # -- internals -----------------------------------------------------------

    def _state(self, session: Session, now: float) -> SessionState:
        state = self._states.get(_key(session))
        if state is None:
            origin = now - (self._wall_clock() - session.started_at)
            state = self._states[_key(session)] = SessionState(origin=origin)
            if session.resumed is not None:
                _carry_over(state, session.resumed)
        return state

    def _follow(
        self,
        track: Track,
        leg: Leg,
        segmenter: SpeechSegmenter,
        state: SessionState,
        index: int,
    ) -> None:
        """Turn the leg's new dropouts into marks and settle earlier marks' in_speech."""
        if track.leg is not leg:
            if track.leg is not None:
                self._take_dropouts(track, track.leg, state, index)
            track.leg, track.dropouts_seen = leg, 0
        self._take_dropouts(track, leg, state, index)
        for mark in track.marks:
            if mark.leg is None:
                continue
            if mark.dropout in mark.leg.dropouts_in_speech:
                mark.in_speech = True
            elif mark.leg.ended.is_set():
                mark.in_speech = False  # the leg's final resolution found no speech around it
            else:
                d = mark.dropout
                mark.in_speech = segmenter.speech_around(d.media_start, d.media_end)
            if mark.in_speech is not None:
                mark.leg = None

    def _take_dropouts(self, track: Track, leg: Leg, state: SessionState, index: int) -> None:
        found = leg.stats.dropouts
        oldest_open = min(track.buckets, default=index)
        for dropout in found[track.dropouts_seen :]:
            t = dropout.started_at - state.origin
            # A bucket already written for the last time is not revisited: a dropout found
            # that late (a very long gap) counts from the oldest bucket still open.
            bucket = max(int(t // BUCKET_SECONDS), oldest_open)
            track.marks.append(Mark(dropout, t, bucket, leg))
        track.dropouts_seen = len(found)

    def _checkpoint(
        self,
        session: Session,
        state: SessionState,
        now: float,
        *,
        end_reason: ReportEndReason | None,
    ) -> Checkpoint:
        """The session as of now; moves the write window on (call once per write)."""
        snapshot = session.snapshot(now)
        state.last_checkpoint = now
        current = int((now - state.origin) // BUCKET_SECONDS)
        legs: list[LegAggregate] = []
        points: list[TimelinePoint] = []
        speech_from: list[tuple[str, int]] = []
        speech: list[SpeechSpan] = []
        marks: list[DropoutMark] = []
        for role, live in snapshot.roles.items():
            slot = session.slots[role]
            track = state.tracks.setdefault(role, Track())
            if slot.leg is not None:
                self._follow(track, slot.leg, slot.segmenter, state, current)
            legs.append(aggregate(role, live, track))
            segments = slot.segmenter.all_segments()
            for bucket in sorted(track.buckets.values(), key=lambda b: b.index):
                points.append(timeline_point(role, bucket, track, segments, state.origin))
            closed = len(slot.segmenter.segments)
            speech_from.append((role, track.speech_written))
            speech.extend(
                SpeechSpan(role, i, seg.start - state.origin, seg.end - state.origin)
                for i, seg in enumerate(segments[track.speech_written :], track.speech_written)
            )
            track.speech_written = closed
            marks.extend(
                DropoutMark(role, m.t_seconds, m.dropout.duration_seconds, m.in_speech)
                for m in track.marks
            )
            # Written now for the last time unless still filling (this and the previous
            # bucket, whose speech may be classified a little late).
            for index in [i for i in track.buckets if i < current - 1 or end_reason]:
                del track.buckets[index]
        return Checkpoint(
            session_id=session.id,
            started_at=session.started_at,
            checkpoint_at=self._wall_clock(),
            ended_at=session.ended_at if end_reason else None,
            end_reason=end_reason,
            roles=tuple(snapshot.roles),
            legs=tuple(legs),
            turns=turns_json(snapshot.turns),
            points=tuple(points),
            speech_from=tuple(speech_from),
            speech=tuple(speech),
            dropouts=tuple(sorted(marks, key=lambda m: m.t_seconds)),
        )

    async def _finish(self, session: Session, reason: str) -> None:
        """Save the session's final report once its legs have finished closing."""
        legs = [slot.leg for slot in session.slots.values() if slot.leg is not None]
        # Dropouts in speech are settled when a leg closes; wait for that, within reason.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(leg.ended.wait() for leg in legs)), self._leg_close_timeout
            )
        now = self._clock()
        session.turn_stats(now, max_age_seconds=0.0)  # final figures, not a cached second
        end_reason: ReportEndReason = "ended"
        if reason == "shutdown":
            end_reason = "shutdown"
        elif legs and all(leg.end_reason == "lost" for leg in legs):
            end_reason = "lost"
        state = self._state(session, now)
        self._states.pop(_key(session), None)
        if not self._store.is_open:
            log.warning("report store closed; a session's final report was not saved")
            return
        checkpoint = self._checkpoint(session, state, now, end_reason=end_reason)
        ended = session.ended_at or checkpoint.checkpoint_at
        duration = max(0.0, ended - session.started_at)
        self._store.save(
            checkpoint, final=True, on_final_saved=lambda ratio: self._report_saved(duration, ratio)
        )

    def _report_saved(self, duration_seconds: float, degraded_ratio: float) -> None:
        if self._observer is not None:
            self._observer.on_session_report(duration_seconds, degraded_ratio)


def _carry_over(state: SessionState, resumed: Resumed) -> None:
    """A session moved here: its stored speech stays as stored (the segmenter was seeded
    with it), and its stored dropouts stay in the report, which rewrites them all."""
    for carried in resumed.roles:
        track = state.tracks.setdefault(carried.role, Track())
        track.speech_written = len(carried.speech)
        for d in carried.dropouts:
            dropout = Dropout(state.origin + d.t_seconds, d.duration_seconds, 0)
            bucket = int(d.t_seconds // BUCKET_SECONDS)
            track.marks.append(Mark(dropout, d.t_seconds, bucket, None, d.in_speech))


def _key(session: Session) -> tuple[str, float]:
    return (session.id, session.started_at)
