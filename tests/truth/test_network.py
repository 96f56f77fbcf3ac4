"""Ground truth through the whole path: WHIP publisher → impairment → service → session API.

Tolerances are those of the walking-skeleton issue: loss exact to ±1 packet per 1000 and
±0.5 pp; RTT ±5 ms; a 500 ms outage is one dropout of 0.50 ± 0.04 s; jitter ±2 ms of
RFC 3550 computed over the impairment's own record of the same packets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qualmon.sim.impairment import ImpairmentConfig
from qualmon.sim.publisher import WhipPublisher

from ..conftest import Service, wait_for

pytestmark = pytest.mark.realtime

PTIME_SECONDS = 0.020


async def quiesce(
    service: Service, publisher: WhipPublisher, session: str, role: str
) -> dict[str, Any]:
    """Pause the sender and wait until every delivered packet is counted; return the leg JSON."""
    publisher.track.pause()  # type: ignore[attr-defined]
    impairment = publisher.impairment
    assert impairment is not None

    async def settled() -> dict[str, Any] | None:
        in_flight = any(r.delivered_at is None and r.dropped is None for r in impairment.records)
        delivered = sum(1 for r in impairment.records if r.delivered_at is not None)
        leg = (await service.session_json(session))["legs"][role]
        return leg if not in_flight and leg["packets_received"] == delivered else None

    return await wait_for(settled, timeout=5.0, what="all delivered packets counted")


def dropped_before_last_delivered(publisher: WhipPublisher) -> tuple[int, int]:
    """(dropped, sent) up to the last delivered packet: a trailing loss is invisible."""
    assert publisher.impairment is not None
    records = publisher.impairment.records
    last = max(i for i, r in enumerate(records) if r.delivered_at is not None)
    window = records[: last + 1]
    return sum(1 for r in window if r.dropped), len(window)


def gaps_in_record(publisher: WhipPublisher, *, threshold_seconds: float = 0.150) -> int:
    """Dropouts the impairment's own record shows: between consecutive delivered packets,
    the media of the packets dropped between them plus how much later than their timestamps
    the second was delivered (the rule of core/rtp_stats.py, applied to the record). A
    publisher or event loop that stalls makes such a gap without any packet being lost."""
    assert publisher.impairment is not None
    found, previous, missing = 0, None, 0
    for record in publisher.impairment.records:
        if record.delivered_at is None:
            missing += 1
            continue
        if previous is not None:
            ts_step = ((record.rtp_timestamp - previous.rtp_timestamp) % (1 << 32)) / 48000
            late = (record.delivered_at - previous.delivered_at) - ts_step
            if missing * PTIME_SECONDS + max(0.0, late) >= threshold_seconds:
                found += 1
        previous, missing = record, 0
    return found


def loop_stalls(service: Service, *, at_least_seconds: float = 0.1) -> float:
    """How often the shared event loop (publishers and service) ran a timer this late."""
    registry = service.metrics.registry
    total = registry.get_sample_value("qualmon_event_loop_lag_seconds_count") or 0.0
    on_time = registry.get_sample_value(
        "qualmon_event_loop_lag_seconds_bucket", {"le": str(at_least_seconds)}
    )
    return total - (on_time or 0.0)


async def test_random_loss_is_counted_exactly(service: Service, publishers: Any) -> None:
    """1 %, 5 % and 20 % injected loss: packets_lost equals what the impairment dropped, and
    isolated losses make no dropout: any dropout has a gap of its own in the impairment's
    record or a stall of the event loop behind it (a slow runner's, not a loss's)."""
    ratios = {"loss-1": 0.01, "loss-5": 0.05, "loss-20": 0.20}
    started = await asyncio.gather(
        *(
            publishers(
                service, session, "client", impairment=ImpairmentConfig(loss_ratio=ratio, seed=i)
            )
            for i, (session, ratio) in enumerate(ratios.items())
        )
    )
    stalls_before = loop_stalls(service)  # once connected: set-up work is no media gap
    await asyncio.sleep(12.0)
    for publisher, session in zip(started, ratios, strict=True):
        leg = await quiesce(service, publisher, session, "client")
        dropped, sent = dropped_before_last_delivered(publisher)
        assert sent >= 500
        assert abs(leg["packets_lost"] - dropped) <= max(1, sent // 1000), (session, leg, dropped)
        assert leg["loss_ratio"] == pytest.approx(dropped / sent, abs=0.005)
        stalls = loop_stalls(service) - stalls_before
        explained = gaps_in_record(publisher) + stalls
        assert leg["dropouts"] <= explained, (session, leg["dropouts"], explained)
        if explained == 0:
            assert leg["dropouts"] == 0
        # The running counts (all a long `qualmon publish` or demo keeps) match the records.
        impairment = publisher.impairment
        assert impairment.packets_sent == len(impairment.records)
        assert impairment.packets_dropped == len(impairment.dropped_sequence_numbers)


async def test_rtt_measures_injected_delay(service: Service, publishers: Any) -> None:
    """50 ms of delay each way → rtt_seconds 0.100 ± 0.005."""
    await publishers(service, "rtt", "therapist", impairment=ImpairmentConfig(delay_seconds=0.050))

    async def measured() -> float | None:
        leg = (await service.session_json("rtt"))["legs"]["therapist"]
        return (
            leg["rtt_seconds"]
            if service.sessions.sessions["rtt"].slots["therapist"].leg.rtt.samples >= 4
            else None
        )  # type: ignore[union-attr]

    rtt = await wait_for(measured, timeout=15.0, what="four RTT samples")
    assert rtt == pytest.approx(0.100, abs=0.005)


async def test_outage_is_one_dropout(service: Service, publishers: Any) -> None:
    """A 500 ms outage → exactly one dropout of 0.50 ± 0.04 s (plus one per stall of a slow
    runner's event loop, should one happen, as in the loss test)."""
    publisher = await publishers(
        service, "outage", "client", impairment=ImpairmentConfig(outages=((2.0, 0.5),))
    )
    stalls_before = loop_stalls(service)
    await asyncio.sleep(4.0)
    leg = await quiesce(service, publisher, "outage", "client")
    gaps, stalls = gaps_in_record(publisher), loop_stalls(service) - stalls_before
    assert gaps >= 1  # the outage itself
    if gaps == 1 and stalls == 0:
        assert leg["dropouts"] == 1
        assert leg["dropout_seconds"] == pytest.approx(0.50, abs=0.04)
    else:
        assert gaps <= leg["dropouts"] <= gaps + stalls, (leg["dropouts"], gaps, stalls)
        assert leg["dropout_seconds"] >= 0.46
    assert publisher.impairment is not None
    assert leg["packets_lost"] == len(publisher.impairment.dropped_sequence_numbers)


def rfc3550_jitter(records: list[Any], clock_rate: int = 48000) -> float:
    """Reference jitter over delivered packets in delivery order, from the impairment's record."""
    delivered = sorted(
        (r for r in records if r.delivered_at is not None), key=lambda r: r.delivered_at
    )
    jitter, previous = 0.0, None
    base_ts = delivered[0].rtp_timestamp
    for r in delivered:
        ts = (r.rtp_timestamp - base_ts) % (1 << 32)
        transit = r.delivered_at - ts / clock_rate
        if previous is not None:
            jitter += (abs(transit - previous) - jitter) / 16
        previous = transit
    return jitter


async def test_jitter_matches_rfc3550_over_the_same_packets(
    service: Service, publishers: Any
) -> None:
    """20 ms ± 15 ms of delay → jitter_seconds within 2 ms of the reference computation."""
    publisher = await publishers(
        service,
        "jitter",
        "client",
        impairment=ImpairmentConfig(delay_seconds=0.020, jitter_seconds=0.015, seed=3),
    )
    await asyncio.sleep(6.0)
    leg = await quiesce(service, publisher, "jitter", "client")
    assert publisher.impairment is not None
    reference = rfc3550_jitter(publisher.impairment.records)
    assert reference > 0.005  # the injection really produced jitter
    assert leg["jitter_seconds"] == pytest.approx(reference, abs=0.002)
