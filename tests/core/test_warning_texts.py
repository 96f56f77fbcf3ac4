"""Unit tests of the warning texts."""

from __future__ import annotations

from qualmon.core.warning_texts import texts
from qualmon.core.warnings import DEFAULT_RULES


def test_every_default_rule_has_texts() -> None:
    """Every shipped rule has a therapist and an SRE text, raised and cleared."""
    for rule in DEFAULT_RULES:
        for cleared in (False, True):
            therapist, sre = texts(rule.kind, "client", 1.0, rule.threshold, cleared=cleared)
            assert therapist and sre


def test_cleared_texts_say_what_settled() -> None:
    """A kind without a cleared text of its own says what settled; SREs see "cleared: "."""
    therapist, sre = texts("high_rtt", "therapist", 0.1, 0.4, cleared=True)
    assert therapist == "This has settled: the delay is back to normal."
    assert sre == "cleared: therapist RTT 100 ms (threshold 400 ms)"
    therapist, _ = texts("connection_lost", "client", 0.0, 1.0, cleared=True)
    assert therapist == "The client's connection is back."


def test_session_warnings_name_no_role() -> None:
    therapist, sre = texts("talk_over_delay", None, 3.0, 2.0, cleared=False)
    assert therapist.startswith("The connection delay")
    assert sre == "overlap 3.0 s in 30 s while RTT > 300 ms"
    _, sre = texts("low_mos", None, 3.0, 3.5, cleared=False)
    assert sre.startswith("session estimated MOS 3.00")
