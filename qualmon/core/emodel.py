"""ITU-T G.107 E-model (narrowband): delay and loss to R factor to estimated MOS."""

import math
from dataclasses import dataclass

# G.107 with every other parameter at its default: Ro − Is + A.
_R_DEFAULT = 93.2
# G.107: below this one-way delay the talker does not notice it (echo cancelled).
_DELAY_THRESHOLD_MS = 100.0


@dataclass(frozen=True)
class EModelParams:
    """Codec parameters of the loss term; keep them configurable, Opus has no published values."""

    ie: float = 0.0
    "Equipment impairment without loss. No published value for Opus; tools assume 0."
    bpl: float = 25.1
    "Packet-loss robustness. No published value for Opus; tools assume G.711 with PLC (25.1)."
    burst_r: float = 1.0
    "Burst ratio: 1 for random loss, above 1 for bursty loss."


DEFAULT_PARAMS = EModelParams()


def delay_impairment(one_way_delay_seconds: float) -> float:
    """Idd, the delay impairment with echo cancelled, for a one-way mouth-to-ear delay."""
    if one_way_delay_seconds < 0:
        raise ValueError(f"one_way_delay_seconds must be >= 0, got {one_way_delay_seconds}")
    ta_ms = one_way_delay_seconds * 1000.0
    if ta_ms <= _DELAY_THRESHOLD_MS:
        return 0.0
    x = math.log2(ta_ms / _DELAY_THRESHOLD_MS)
    # math.pow, not **: float ** float is typed Any (it may be complex); same C pow().
    return 25.0 * (math.pow(1 + x**6, 1 / 6) - 3 * math.pow(1 + (x / 3) ** 6, 1 / 6) + 2)


def effective_equipment_impairment(loss_ratio: float, params: EModelParams) -> float:
    """Ie,eff for a packet-loss ratio in 0–1 (G.107 writes the formula in percent)."""
    if loss_ratio < 0:
        raise ValueError(f"loss_ratio must be >= 0, got {loss_ratio}")
    ppl_percent = loss_ratio * 100.0
    return params.ie + (95.0 - params.ie) * ppl_percent / (
        ppl_percent / params.burst_r + params.bpl
    )


def r_factor(
    *, one_way_delay_seconds: float, loss_ratio: float, params: EModelParams = DEFAULT_PARAMS
) -> float:
    """R = 93.2 − Idd − Ie,eff: every G.107 parameter but delay and loss at its default."""
    return (
        _R_DEFAULT
        - delay_impairment(one_way_delay_seconds)
        - effective_equipment_impairment(loss_ratio, params)
    )


def mos_from_r(r: float) -> float:
    """MOS (conversational quality, 1–4.5) from an R factor, clamped as G.107 prescribes.

    The cubic dips below 1 for 0 < R < 6.5 (0.989 at R = 3.2): held at 1, the scale's floor.
    """
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))


def estimated_mos(
    *,
    rtt_seconds: float | None,
    jitter_seconds: float,
    loss_ratio: float,
    params: EModelParams = DEFAULT_PARAMS,
    packetization_seconds: float = 0.020,
    buffer_seconds: float | None = None,
) -> float:
    """Estimated MOS from network measures; an estimate because Opus has no G.107 values.

    One-way delay Ta = rtt/2 (0 when the RTT is unknown) + the jitter-buffer delay
    (buffer_seconds when a receiver measured it, else 2·jitter: a buffer sized at twice the
    jitter) + packetization. The loss ratio is clamped into 0–1 (RTCP's cumulative
    loss goes negative with duplicates); a negative RTT, jitter or packetization raises ValueError.
    """
    if rtt_seconds is not None and rtt_seconds < 0:
        raise ValueError(f"rtt_seconds must be >= 0, got {rtt_seconds}")
    if jitter_seconds < 0:
        raise ValueError(f"jitter_seconds must be >= 0, got {jitter_seconds}")
    if packetization_seconds < 0:
        raise ValueError(f"packetization_seconds must be >= 0, got {packetization_seconds}")
    network_seconds = rtt_seconds / 2 if rtt_seconds is not None else 0.0
    buffer = 2 * jitter_seconds if buffer_seconds is None else buffer_seconds
    one_way_delay_seconds = network_seconds + buffer + packetization_seconds
    r = r_factor(
        one_way_delay_seconds=one_way_delay_seconds,
        loss_ratio=min(max(loss_ratio, 0.0), 1.0),
        params=params,
    )
    return mos_from_r(r)
