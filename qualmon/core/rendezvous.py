"""Which instance a session belongs to: rendezvous (highest-random-weight) hashing.

Every instance computes the same answer from the same candidates, and adding or removing
one instance moves only the sessions that instance wins or owned (about 1/n of them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """An instance as the choice sees it."""

    instance_id: str
    serving: bool
    "False while it drains: it takes no new session."
    live_legs: int
    capacity_legs: int
    "Its leg cap (`QUALMON_MAX_LEGS`)."

    @property
    def has_room(self) -> bool:
        return self.serving and self.live_legs < self.capacity_legs


def weight(session_id: str, instance_id: str) -> int:
    """The pair's score: blake2b, so every process (and Python version) agrees, unlike
    `hash()`, which is salted per process. The NUL keeps ("ab", "c") apart from ("a", "bc")."""
    digest = hashlib.blake2b(
        f"{session_id}\0{instance_id}".encode(), digest_size=8, person=b"qualmon-hrw"
    ).digest()
    return int.from_bytes(digest, "big")


def choose_owner(session_id: str, candidates: Sequence[Candidate]) -> str | None:
    """The id of the candidate with room that scores highest for `session_id`; None when
    none has room. Ties (a 64-bit collision) go to the smaller id, so the answer stays
    independent of the candidates' order."""
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if not candidate.has_room:
            continue
        score = (weight(session_id, candidate.instance_id), candidate.instance_id)
        if best is None or score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
            best = score
    return None if best is None else best[1]
