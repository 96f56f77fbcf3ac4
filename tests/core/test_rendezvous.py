"""Rendezvous hashing: stable, order-free, and minimal movement when instances come and go."""

from __future__ import annotations

import subprocess
import sys

from qualmon.core.rendezvous import Candidate, choose_owner

SESSIONS = [f"session-{i}" for i in range(10_000)]


def serving(*ids: str) -> list[Candidate]:
    return [Candidate(i, serving=True, live_legs=0, capacity_legs=100) for i in ids]


def owners(candidates: list[Candidate]) -> dict[str, str | None]:
    return {s: choose_owner(s, candidates) for s in SESSIONS}


def test_the_choice_is_stable_and_independent_of_order() -> None:
    """Same candidates, same answer, whatever their order."""
    forward = serving("a", "b", "c", "d")
    assert owners(forward) == owners(list(reversed(forward)))


def test_the_choice_is_the_same_in_another_process() -> None:
    """No per-process salt (Python's `hash()` would differ between processes)."""
    code = (
        "from qualmon.core.rendezvous import Candidate, choose_owner;"
        "c=[Candidate(i, True, 0, 1) for i in 'abcd'];"
        "print(','.join(str(choose_owner(f's{i}', c)) for i in range(50)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    here = serving("a", "b", "c", "d")
    assert other == ",".join(str(choose_owner(f"s{i}", here)) for i in range(50))


def test_the_spread_is_even() -> None:
    """Four instances: each wins a quarter of 10,000 sessions, within 10 % of that."""
    chosen = list(owners(serving("a", "b", "c", "d")).values())
    for instance in "abcd":
        assert abs(chosen.count(instance) - 2500) < 250, chosen.count(instance)


def test_adding_an_instance_moves_only_the_sessions_it_wins() -> None:
    """Four → five: every moved session moved to the new one, and about 1/5 moved
    (measured 0.208 of 10,000; bound: within 0.03 of 1/5)."""
    before = owners(serving("a", "b", "c", "d"))
    after = owners(serving("a", "b", "c", "d", "e"))
    moved = [s for s in SESSIONS if before[s] != after[s]]
    assert all(after[s] == "e" for s in moved)
    assert abs(len(moved) / len(SESSIONS) - 1 / 5) < 0.03, len(moved)


def test_removing_an_instance_moves_only_the_sessions_it_owned() -> None:
    """Five → four: exactly the sessions of the removed one move, the rest stay."""
    before = owners(serving("a", "b", "c", "d", "e"))
    after = owners(serving("a", "b", "d", "e"))
    moved = {s for s in SESSIONS if before[s] != after[s]}
    assert moved == {s for s in SESSIONS if before[s] == "c"}
    assert abs(len(moved) / len(SESSIONS) - 1 / 5) < 0.03, len(moved)


def test_draining_and_full_instances_get_nothing() -> None:
    """Draining (not serving) or at the leg cap: excluded; the rest keep their sessions."""
    candidates = [
        Candidate("a", serving=True, live_legs=0, capacity_legs=10),
        Candidate("b", serving=False, live_legs=0, capacity_legs=10),
        Candidate("c", serving=True, live_legs=10, capacity_legs=10),
        Candidate("d", serving=True, live_legs=9, capacity_legs=10),
    ]
    full = owners(serving("a", "b", "c", "d"))
    chosen = owners(candidates)
    assert set(chosen.values()) == {"a", "d"}
    assert all(chosen[s] == full[s] for s in SESSIONS if full[s] in ("a", "d"))


def test_no_candidate_with_room_gives_none() -> None:
    assert choose_owner("s", []) is None
    assert choose_owner("s", [Candidate("a", serving=False, live_legs=0, capacity_legs=1)]) is None
    assert choose_owner("s", [Candidate("a", serving=True, live_legs=1, capacity_legs=1)]) is None
