"""Unit tests of the warning engine on synthetic timelines (time passed in)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from qualmon.core.warnings import DEFAULT_RULES, Rule, WarningEngine, override_rules

LOSS = Rule(
    "high_loss",
    "warning",
    0.03,
    raise_n=2,
    raise_m=3,
    clear_after_seconds=5.0,
    min_hold_seconds=5.0,
    rate_limit_seconds=30.0,
)


def run(
    engine: WarningEngine,
    values: list[float | None],
    *,
    role: str = "client",
    kind: str = "high_loss",
    tick: float = 1.0,
    start: float = 0.0,
) -> list[tuple[str, float]]:
    out = []
    for i, value in enumerate(values):
        now = start + i * tick
        for event in engine.evaluate(now, {(kind, role): value}):
            out.append((event.type, now))
    return out


def test_n_of_m_raise() -> None:
    """One bad tick is not enough; the second within three raises."""
    engine = WarningEngine(rules=(LOSS,))
    assert run(engine, [0.1, 0.0, 0.0, 0.1, 0.0, 0.1]) == [("raised", 5.0)]


def test_clear_needs_recovery_period() -> None:
    """Cleared only after 5 s of continuous recovery."""
    engine = WarningEngine(rules=(LOSS,))
    events = run(engine, [0.1, 0.1] + [0.0] * 3 + [0.1] + [0.0] * 8)
    assert events == [("raised", 1.0), ("cleared", 11.0)]


def test_minimum_hold() -> None:
    """Even with instant recovery allowed, a warning stays for its minimum hold."""
    rule = Rule(
        "high_loss",
        "warning",
        0.03,
        raise_n=1,
        raise_m=1,
        clear_after_seconds=0.0,
        min_hold_seconds=5.0,
    )
    engine = WarningEngine(rules=(rule,))
    assert run(engine, [0.1] + [0.0] * 8) == [("raised", 0.0), ("cleared", 5.0)]


def test_rate_limit() -> None:
    """After clearing, the same warning is not raised again within the rate limit."""
    rule = Rule(
        "high_loss",
        "warning",
        0.03,
        raise_n=1,
        raise_m=1,
        clear_after_seconds=1.0,
        min_hold_seconds=0.0,
        rate_limit_seconds=10.0,
    )
    engine = WarningEngine(rules=(rule,))
    events = run(engine, [0.1, 0.0, 0.0] + [0.1, 0.0, 0.0] * 2 + [0.1] * 10)
    assert events == [("raised", 0.0), ("cleared", 2.0), ("raised", 12.0)]


def test_no_flapping_around_threshold() -> None:
    """A signal oscillating around the threshold raises once and stays raised."""
    engine = WarningEngine(rules=(LOSS,))
    values = [0.03 + 0.005 * math.sin(i) for i in range(120)]
    events = run(engine, values)
    assert [e for e, _ in events] == ["raised"]


def test_alternating_good_bad_never_clears_or_reraises() -> None:
    engine = WarningEngine(rules=(LOSS,))
    events = run(engine, [0.1, 0.0] * 60)
    assert [e for e, _ in events] == ["raised"]


def test_unknown_value_counts_as_clear_and_roles_are_separate() -> None:
    engine = WarningEngine(rules=(LOSS,))
    events = []
    for i in range(4):
        events += engine.evaluate(
            float(i), {("high_loss", "client"): 0.2, ("high_loss", "therapist"): None}
        )
    assert [(e.type, e.role) for e in events] == [("raised", "client")]
    assert engine.active() == [("high_loss", "client")]


def test_event_texts_are_calm_and_specific() -> None:
    engine = WarningEngine(rules=(LOSS,))
    events = []
    for i in range(3):
        events += engine.evaluate(float(i), {("high_loss", "client"): 0.12})
    event = events[0]
    assert event.kind == "high_loss" and event.severity == "warning"
    assert event.value == 0.12 and event.threshold == 0.03
    assert "client" in event.therapist_text.lower() and "repeat" in event.therapist_text
    assert "12.0%" in event.sre_text and "client" in event.sre_text


def test_below_threshold_rules() -> None:
    """low_mos is bad at or below its threshold."""
    engine = WarningEngine(rules=tuple(r for r in DEFAULT_RULES if r.kind == "low_mos"))
    events = run(engine, [4.2, 3.0, 3.1, 3.2, 4.2], kind="low_mos")
    assert events == [("raised", 3.0)]


def test_disabled_rule_and_overrides() -> None:
    engine = WarningEngine()
    assert not engine.rule("talk_balance").enabled
    enabled = engine.with_overrides(talk_balance={"enabled": True})
    assert enabled.rule("talk_balance").enabled
    events = []
    for i in range(12):
        events += engine.evaluate(float(i), {("talk_balance", None): 0.95})
    assert events == []
    events = []
    for i in range(12):
        events += enabled.evaluate(float(i), {("talk_balance", None): 0.95})
    assert [e.type for e in events] == ["raised"]


# The shipped rule, with a shorter hold to keep the timeline short.
RECOVERING = replace(next(r for r in DEFAULT_RULES if r.kind == "high_loss"), min_hold_seconds=2.0)


def test_recovery_is_judged_on_the_clear_measure() -> None:
    """Raised on the long-window value; cleared as soon as the short window is clean, even
    while the long window still remembers the loss — and never by the long value alone."""
    engine = WarningEngine(rules=(RECOVERING,))
    key, recent = ("high_loss", "client"), ("high_loss_recent", "client")
    events = []
    timeline = [
        (0.0, 0.01, 0.01),
        (0.5, 0.06, 0.08),  # raised
        (1.0, 0.06, 0.06),
        (2.0, 0.01, 0.05),  # long value clean, recent still lossy: stays raised
        (3.0, 0.06, 0.0),  # recent clean, long still high: clear period starts
        (3.5, 0.06, 0.0),  # held 0.5 s: cleared
    ]
    for now, value, recent_value in timeline:
        for event in engine.evaluate(now, {key: value, recent: recent_value}):
            events.append((event.type, now, event.value))
    assert events == [("raised", 0.5, 0.06), ("cleared", 3.5, 0.06)]


def test_kinds_limit_a_tick_to_some_rules() -> None:
    """A deadline evaluation (kinds=…) steps only those rules: others' N-of-M is untouched."""
    stopped = Rule("media_stopped", "critical", 2.0, raise_n=1, raise_m=1)
    engine = WarningEngine(rules=(LOSS, stopped))
    values = {("high_loss", "client"): 0.1, ("media_stopped", "client"): 2.01}
    raised = engine.evaluate(0.0, values, kinds=("media_stopped",))
    assert [(e.kind, e.type) for e in raised] == [("media_stopped", "raised")]
    # high_loss saw no tick yet: one more bad tick is still not two of three.
    assert engine.evaluate(0.5, values) == []
    assert [e.kind for e in engine.evaluate(1.0, values)] == ["high_loss"]


def test_override_rules_is_strict_and_keeps_order() -> None:
    changed = override_rules(DEFAULT_RULES, "high_loss.clear_threshold=0.01,")
    assert [r.kind for r in changed] == [r.kind for r in DEFAULT_RULES]
    assert next(r for r in changed if r.kind == "high_loss").clear_threshold == 0.01
    assert override_rules(DEFAULT_RULES, " ") == DEFAULT_RULES
    for bad in (
        "high_loss.threshold=nan",
        "high_loss.enabled=perhaps",
        "x.threshold=1",
        "high_loss.threshold=0.01",  # below its clear threshold (0.015): it would flap
        "low_mos.clear_threshold=3.0",  # a below-rule clears only above its threshold
        "high_rtt.threshold=٣",  # float() reads 3.0
        "high_rtt.threshold=0.٣",
        "high_rtt.threshold=1_0",
        "high_rtt.threshold=inf",
        "high_rtt.min_hold_seconds=1e999",
        "high_rtt.raise_m=٩",  # int() reads 9
        "high_rtt.raise_m=９",
        "high_rtt.raise_m=²",
        "high_rtt.raise_n=+1",
    ):
        with pytest.raises(ValueError):
            override_rules(DEFAULT_RULES, bad)


@pytest.mark.parametrize("value", ["1" + "0" * 30, "10000"])
def test_tick_counts_have_four_digits_at_most(value: str) -> None:
    """Found by fuzzing QUALMON_WARNING_RULES: raise_m=10^30 was accepted and the engine's
    first tick raised OverflowError (a deque's maxlen must fit a C ssize_t)."""
    with pytest.raises(ValueError, match="is not a valid raise_m"):
        override_rules(DEFAULT_RULES, f"high_rtt.raise_m={value}")
    rules = override_rules(DEFAULT_RULES, "high_rtt.raise_m=9999")
    engine = WarningEngine(rules=rules)
    assert engine.evaluate(0.0, {("high_rtt", "client"): 1.0}) == []
