"""Talk-turn measures from two roles' speech segments: shares, turns, overlaps, gaps.

Definitions (see README): a *turn* is a maximal run of one role's speech, pauses included,
not broken by the other role taking the floor. Speech segments count voiced time; for turns
a role's segments are joined across its pauses shorter than `pause_in_turn_seconds`, so a
word the other says into such a pause, with the holder going on, is a backchannel, not a
turn. The other role takes the floor by starting to speak in silence (a response; its
*response gap* is its start minus the end of the previous turn) or by an *interruption*:
speaking over the holder, who then stops while the newcomer goes on (gap negative). A
*backchannel* is a short overlap (< 1 s by default) after which the holder is still
speaking; it is speech but not a turn. A longer overlap the holder outlasts changes nothing
either, but counts as overlap.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .quantiles import percentile
from .speech import Segment


@dataclass(frozen=True)
class TurnParams:
    backchannel_max_seconds: float = 1.0
    "An overlap shorter than this that leaves the holder speaking is a backchannel."
    pause_in_turn_seconds: float = 1.0
    "A role's own pauses shorter than this keep its floor: speech seconds count voiced time,"
    " but a word the other says into the holder's pause, with the holder going on, is not a"
    " turn taken."


@dataclass(frozen=True)
class GapStats:
    median_seconds: float
    p90_seconds: float
    count: int


@dataclass(frozen=True)
class Turn:
    role: str
    start: float
    end: float


@dataclass(frozen=True)
class TurnStats:
    """Conversation measures of a session up to now."""

    speech_seconds: dict[str, float]
    talk_share: dict[str, float]
    "Speech seconds / all speech seconds (silence excluded); empty until anyone spoke."
    turn_count: dict[str, int]
    mean_turn_seconds: dict[str, float | None]
    longest_turn_seconds: dict[str, float | None]
    overlap_seconds: float
    interruptions: dict[str, int]
    "By the role that interrupted."
    backchannels: dict[str, int]
    "By the role that gave the backchannel."
    response_gaps: dict[str, GapStats | None]
    "Gaps before the turns of this role (the responder)."
    silence_ratio: float | None
    "Share of the observed span in which nobody spoke (missing audio excluded)."
    turns: tuple[Turn, ...] = field(default=(), repr=False)


def _union_length(intervals: Sequence[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def intersection_length(a: Sequence[Segment], b: Sequence[Segment]) -> float:
    """Time covered by both lists (each sorted and non-overlapping), in one merge pass."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i].end, b[j].end) - max(a[i].start, b[j].start))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return total


def _covering(segments: Sequence[Segment], starts: Sequence[float], at: float) -> Segment | None:
    """The segment of this role that is under way at `at`, if any (segments don't overlap)."""
    index = bisect.bisect_right(starts, at) - 1
    if index >= 0 and segments[index].start <= at < segments[index].end:
        return segments[index]
    return None


def _bridged(segments: Sequence[Segment], pause_seconds: float) -> list[Segment]:
    """A role's stretches of holding the floor: its segments joined across short pauses."""
    joined: list[Segment] = []
    for segment in segments:
        if joined and segment.start - joined[-1].end < pause_seconds:
            last = joined[-1]
            joined[-1] = Segment(last.start, max(last.end, segment.end))
        else:
            joined.append(Segment(segment.start, segment.end))
    return joined


def compute_turns(
    segments: Mapping[str, Sequence[Segment]],
    *,
    roles: Sequence[str] = ("therapist", "client"),
    span: tuple[float, float] | None = None,
    unknown_seconds: float = 0.0,
    params: TurnParams | None = None,
) -> TurnStats:
    """All measures from each role's time-sorted segments; `span` bounds the silence ratio."""
    params = params or TurnParams()
    by_role = {role: sorted(segments.get(role, ()), key=lambda s: s.start) for role in roles}
    speech = {role: sum(s.speech_seconds for s in by_role[role]) for role in roles}
    total_speech = sum(speech.values())
    share = {role: speech[role] / total_speech for role in roles} if total_speech else {}

    turns: list[Turn] = []
    interruptions = dict.fromkeys(roles, 0)
    backchannels = dict.fromkeys(roles, 0)
    gaps: dict[str, list[float]] = {role: [] for role in roles}
    floors = {role: _bridged(by_role[role], params.pause_in_turn_seconds) for role in roles}
    floor_starts = {role: [s.start for s in floors[role]] for role in roles}
    ordered = sorted(
        ((s, role) for role in roles for s in floors[role]), key=lambda pair: pair[0].start
    )
    for segment, role in ordered:
        if not turns:
            turns.append(Turn(role, segment.start, segment.end))
            continue
        current = turns[-1]
        if role == current.role:
            if segment.end > current.end:
                turns[-1] = Turn(role, current.start, segment.end)
            continue
        cover = _covering(floors[current.role], floor_starts[current.role], segment.start)
        if cover is None:
            # The holder is silent: this is a response and takes the floor.
            gaps[role].append(segment.start - current.end)
            turns.append(Turn(role, segment.start, segment.end))
        elif cover.end < segment.end:
            # Spoken over the holder, who stopped first: the newcomer holds the floor.
            interruptions[role] += 1
            turns[-1] = Turn(current.role, current.start, max(cover.end, current.end))
            gaps[role].append(segment.start - cover.end)
            turns.append(Turn(role, segment.start, segment.end))
        elif segment.end - segment.start < params.backchannel_max_seconds:
            backchannels[role] += 1
        # else: a long overlap the holder outlasted; counted only as overlap.

    lengths: dict[str, list[float]] = {role: [] for role in roles}
    for turn in turns:
        lengths[turn.role].append(turn.end - turn.start)
    overlap = 0.0
    if len(roles) == 2:
        overlap = intersection_length(by_role[roles[0]], by_role[roles[1]])
    silence_ratio = None
    if span is not None and span[1] - span[0] - unknown_seconds > 0:
        all_speech = [(s.start, s.end) for role in roles for s in by_role[role]]
        observed = span[1] - span[0] - unknown_seconds
        # unknown time inside segments is in the union but is not speech
        inside = sum(s.unknown_seconds for role in roles for s in by_role[role])
        spoken = _union_length(all_speech) - inside
        silence_ratio = max(0.0, min(1.0, (observed - spoken) / observed))
    return TurnStats(
        speech_seconds=speech,
        talk_share=share,
        turn_count={role: len(lengths[role]) for role in roles},
        mean_turn_seconds={
            role: statistics.fmean(lengths[role]) if lengths[role] else None for role in roles
        },
        longest_turn_seconds={role: max(lengths[role], default=None) for role in roles},
        overlap_seconds=overlap,
        interruptions=interruptions,
        backchannels=backchannels,
        response_gaps={
            role: GapStats(
                median_seconds=statistics.median(gaps[role]),
                p90_seconds=percentile(gaps[role], 0.9),
                count=len(gaps[role]),
            )
            if gaps[role]
            else None
            for role in roles
        },
        silence_ratio=silence_ratio,
        turns=tuple(turns),
    )
