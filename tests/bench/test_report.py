"""The pipeline bench's report: ratios within a round, medians over rounds."""

from __future__ import annotations

import pytest

from qualmon.bench.pipeline import ReceiverResult, report


def result(mode: str, cpu: float) -> ReceiverResult:
    return ReceiverResult(mode, 40, 15.0, cpu, 0.5, 2.0, None, 40)


def test_speech_path_is_full_minus_network_over_bare_per_round() -> None:
    rounds = [
        {
            "bare": result("bare", 10.0),
            "network": result("network", 3.0),
            "qualmon": result("qualmon", 5.0),
        },
        {
            "bare": result("bare", 20.0),
            "network": result("network", 6.0),
            "qualmon": result("qualmon", 12.0),
        },
        {
            "bare": result("bare", 10.0),
            "network": result("network", 3.5),
            "qualmon": result("qualmon", 6.0),
        },
    ]
    out = report(rounds)
    assert out["speech_ratios"] == pytest.approx([0.2, 0.3, 0.25])
    assert out["speech_ratio"] == pytest.approx(0.25)
    assert out["ratio"] == pytest.approx(0.6)
    assert out["network_ratio"] == pytest.approx(0.3)


def test_goals_of_issue_17_legs_at_70_percent_and_lag_only_at_100_legs() -> None:
    rounds = [
        {
            "bare": result("bare", 14.0),
            "network": result("network", 2.8),
            "qualmon": result("qualmon", 4.2),
        }
    ]
    out = report(rounds)
    assert out["legs_per_core"] == pytest.approx(700 / 4.2)  # 0.7 of a core at 4.2 ms/leg·s
    assert out["goals"]["ratio<=0.30"] is True
    assert out["goals"]["network_ratio<=0.20"] is True
    assert out["goals"]["legs_per_core_at_70%>=250"] is False  # 167 legs
    assert out["goals"]["lag_p99<20ms_at_100_legs"] is None  # measured at 40 legs
