"""`qualmon bench --video`'s arithmetic: the video part as a multiple of an audio leg."""

from __future__ import annotations

import pytest

from qualmon.bench.pipeline import ReceiverResult
from qualmon.bench.video_cost import load_summary, report, video_multiple


def result(cpu: float, observed: dict[str, object] | None = None) -> ReceiverResult:
    return ReceiverResult("qualmon", 16, 15.0, cpu, 0.5, 2.0, 3.0, 16, observed=observed)


def video(fps: float, bps: float, freezes: int = 0) -> dict[str, object]:
    return {
        "frames_per_second": fps,
        "bitrate_bps": bps,
        "freezes": freezes,
        "frames_incomplete": 0,
        "width": 640,
        "height": 480,
    }


def test_video_multiple_is_the_extra_cost_over_the_audio_leg() -> None:
    assert video_multiple(8.0, 20.0) == pytest.approx(1.5)
    assert video_multiple(10.0, 10.0) == 0.0
    with pytest.raises(ValueError):
        video_multiple(0.0, 5.0)


def test_report_takes_the_median_of_per_round_multiples() -> None:
    observed = {"videos": [video(30, 1e6), None, video(29, 0.9e6, 1)], "decoder_threads": []}
    rounds = [
        {"audio": result(8.0), "video": result(16.0, observed)},  # 1.0
        {"audio": result(10.0), "video": result(30.0, observed)},  # 2.0
        {"audio": result(8.0), "video": result(20.0, observed)},  # 1.5
    ]
    out = report(rounds)
    assert out["multiples"] == pytest.approx([1.0, 2.0, 1.5])
    assert out["multiple"] == pytest.approx(1.5)
    assert out["goals"] == {"video_multiple<=1.5": True}
    assert out["decoder_threads"] == []
    assert out["rounds"][0]["load"]["video_legs"] == 2


def test_load_summary_skips_audio_only_roles() -> None:
    summary = load_summary({"videos": [video(30, 1.2e6), None, video(28, 1.0e6, 2)]})
    assert summary["video_legs"] == 2
    assert summary["fps_median"] == pytest.approx(29.0)
    assert summary["fps_min"] == pytest.approx(28.0)
    assert summary["mbps_median"] == pytest.approx(1.1)
    assert summary["freezes"] == 2
    assert summary["size"] == ["640x480"]
    assert load_summary(None) == {"video_legs": 0}
