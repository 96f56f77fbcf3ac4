"""Each leg and session is sampled once a second, in its own phase."""

from __future__ import annotations

from qualmon.sessions.sampling import SampleSchedule


def test_once_a_second_from_the_first_tick_that_sees_it() -> None:
    schedule = SampleSchedule()
    ticks = [100.0 + 0.25 * i for i in range(13)]  # 3 s of 0.25 s ticks
    due = [t for t in ticks if schedule.due("a", t)]
    assert due == [100.0, 101.0, 102.0, 103.0]


def test_keys_seen_on_different_ticks_keep_different_phases() -> None:
    schedule = SampleSchedule()
    sampled: dict[float, list[str]] = {}
    for i in range(12):
        now = 10.0 + 0.25 * i
        if i < 4:  # a new leg on each of the first four ticks
            schedule.due(f"leg{i}", now) and sampled.setdefault(now, []).append(f"leg{i}")
            continue
        for key in ("leg0", "leg1", "leg2", "leg3"):
            if schedule.due(key, now):
                sampled.setdefault(now, []).append(key)
    # After the first second, every tick samples one of the four, never all on one.
    assert all(len(keys) == 1 for keys in sampled.values())
    assert sum(len(keys) for keys in sampled.values()) == 12


def test_after_a_stall_the_next_sample_is_a_period_after_the_late_one() -> None:
    schedule = SampleSchedule()
    assert schedule.due("a", 0.0)
    assert schedule.due("a", 5.3)  # the loop stalled 4 s: sampled once, not 5 times
    assert not schedule.due("a", 5.5)
    assert not schedule.due("a", 6.2)
    assert schedule.due("a", 6.3)


def test_forgotten_keys_start_afresh() -> None:
    schedule = SampleSchedule()
    assert schedule.due("a", 0.0)
    schedule.forget("a")
    assert len(schedule) == 0
    assert schedule.due("a", 0.1)
