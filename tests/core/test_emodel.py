"""Tests for the G.107 E-model against the reference check values."""

import pytest

from qualmon.core.emodel import (
    EModelParams,
    delay_impairment,
    effective_equipment_impairment,
    estimated_mos,
    mos_from_r,
    r_factor,
)


@pytest.mark.parametrize(
    ("r", "mos"),
    [(93.2, 4.409), (90, 4.339), (80, 4.024), (70, 3.597), (60, 3.100), (50, 2.575)],
)
def test_mos_from_r_check_values(r: float, mos: float) -> None:
    """MOS from R matches the G.107 check values."""
    assert mos_from_r(r) == pytest.approx(mos, abs=0.01)


def test_mos_from_r_clamps() -> None:
    """R below 0 gives MOS 1 and R above 100 gives MOS 4.5."""
    assert mos_from_r(-5.0) == 1.0
    assert mos_from_r(100.5) == 4.5
    assert mos_from_r(0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ta_ms", "idd"),
    [(150, 0.16), (200, 3.04), (250, 8.92), (300, 14.76), (400, 24.07), (500, 30.64)],
)
def test_delay_impairment_check_values(ta_ms: float, idd: float) -> None:
    """Idd matches the G.107 check values."""
    assert delay_impairment(ta_ms / 1000) == pytest.approx(idd, abs=0.01)


@pytest.mark.parametrize("ta_seconds", [0.0, 0.05, 0.1])
def test_delay_impairment_zero_up_to_100_ms(ta_seconds: float) -> None:
    """A one-way delay of 100 ms or less costs nothing."""
    assert delay_impairment(ta_seconds) == 0.0


@pytest.mark.parametrize(
    ("loss_percent", "ie_eff"), [(1, 3.64), (2, 7.01), (5, 15.78), (10, 27.07)]
)
def test_effective_equipment_impairment_check_values(loss_percent: float, ie_eff: float) -> None:
    """Ie,eff with Ie 0 and Bpl 25.1 matches the check values; the ratio is 0–1."""
    params = EModelParams(ie=0.0, bpl=25.1)
    assert effective_equipment_impairment(loss_percent / 100, params) == pytest.approx(
        ie_eff, abs=0.01
    )


def test_effective_equipment_impairment_no_loss_is_ie() -> None:
    """Without loss Ie,eff is the codec's own impairment."""
    assert effective_equipment_impairment(0.0, EModelParams(ie=11.0)) == 11.0


def test_burst_ratio_raises_impairment() -> None:
    """Bursty loss hurts more than the same amount of random loss."""
    random = effective_equipment_impairment(0.05, EModelParams())
    bursty = effective_equipment_impairment(0.05, EModelParams(burst_r=2.0))
    assert bursty > random


def test_r_factor_defaults() -> None:
    """With no delay and no loss R is 93.2."""
    assert r_factor(one_way_delay_seconds=0.0, loss_ratio=0.0) == pytest.approx(93.2)


def test_r_factor_and_mos_combined_check_value() -> None:
    """Ta 200 ms with 2 % random loss gives R 83.14 and MOS 4.14."""
    r = r_factor(one_way_delay_seconds=0.200, loss_ratio=0.02)
    assert r == pytest.approx(83.14, abs=0.01)
    assert mos_from_r(r) == pytest.approx(4.14, abs=0.01)


def test_mos_falls_as_loss_rises() -> None:
    """Estimated MOS strictly falls as loss rises."""
    values = [
        estimated_mos(rtt_seconds=0.1, jitter_seconds=0.01, loss_ratio=loss)
        for loss in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
    ]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) == len(values)


def test_mos_falls_as_delay_rises() -> None:
    """Estimated MOS strictly falls as RTT rises past the 100 ms one-way threshold."""
    values = [
        estimated_mos(rtt_seconds=rtt, jitter_seconds=0.0, loss_ratio=0.0)
        for rtt in (0.2, 0.3, 0.5, 0.8, 1.2)
    ]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) == len(values)


def test_estimated_mos_composes_one_way_delay() -> None:
    """Ta is rtt/2 + 2·jitter + packetization."""
    mos = estimated_mos(
        rtt_seconds=0.300, jitter_seconds=0.015, loss_ratio=0.02, packetization_seconds=0.020
    )
    # 150 + 30 + 20 = 200 ms one way.
    expected = mos_from_r(r_factor(one_way_delay_seconds=0.200, loss_ratio=0.02))
    assert mos == pytest.approx(expected)
    assert mos == pytest.approx(4.14, abs=0.01)


def test_estimated_mos_without_rtt_uses_local_delay_only() -> None:
    """An unknown RTT counts as zero network delay."""
    mos = estimated_mos(rtt_seconds=None, jitter_seconds=0.05, loss_ratio=0.0)
    # 100 + 20 = 120 ms one way.
    expected = mos_from_r(r_factor(one_way_delay_seconds=0.120, loss_ratio=0.0))
    assert mos == pytest.approx(expected)


def test_estimated_mos_passes_params() -> None:
    """Codec parameters reach the loss term."""
    worse = estimated_mos(
        rtt_seconds=None, jitter_seconds=0.0, loss_ratio=0.05, params=EModelParams(bpl=10.0)
    )
    default = estimated_mos(rtt_seconds=None, jitter_seconds=0.0, loss_ratio=0.05)
    assert worse < default


def test_estimated_mos_clamps_loss_ratio() -> None:
    """Loss above 1 counts as 1 and below 0 as 0."""

    def mos(loss_ratio: float) -> float:
        return estimated_mos(rtt_seconds=0.1, jitter_seconds=0.0, loss_ratio=loss_ratio)

    assert mos(1.7) == mos(1.0)
    assert mos(-0.01) == mos(0.0)


@pytest.mark.parametrize(
    ("rtt_seconds", "jitter_seconds", "packetization_seconds", "name"),
    [
        (-0.1, 0.0, 0.02, "rtt_seconds"),
        (0.1, -0.001, 0.02, "jitter_seconds"),
        (0.1, 0.0, -0.02, "packetization_seconds"),
    ],
)
def test_estimated_mos_rejects_negative_inputs(
    rtt_seconds: float, jitter_seconds: float, packetization_seconds: float, name: str
) -> None:
    """A negative RTT, jitter or packetization raises ValueError naming it."""
    with pytest.raises(ValueError, match=f"{name} must be >= 0"):
        estimated_mos(
            rtt_seconds=rtt_seconds,
            jitter_seconds=jitter_seconds,
            loss_ratio=0.0,
            packetization_seconds=packetization_seconds,
        )


def test_direct_functions_reject_negative_inputs() -> None:
    """The building blocks refuse negative delay or loss."""
    with pytest.raises(ValueError, match="one_way_delay_seconds"):
        delay_impairment(-0.001)
    with pytest.raises(ValueError, match="loss_ratio"):
        effective_equipment_impairment(-0.01, EModelParams())


@pytest.mark.parametrize("r", [0.5, 1.0, 3.2, 5.0, 6.4])
def test_mos_never_dips_below_one(r: float) -> None:
    """Found by fuzzing the probe tracker: with heavy loss R fell to ~3 and the cubic gave a
    MOS of 0.99, below the 1–4.5 scale the docstring and the dashboards promise."""
    assert mos_from_r(r) == 1.0
    assert mos_from_r(6.6) > 1.0
