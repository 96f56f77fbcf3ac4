"""/metrics: parseable, promtool-clean, bounded labels, values that follow the sessions."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qualmon.sim.impairment import ImpairmentConfig

from ..conftest import Service, wait_for

pytestmark = pytest.mark.realtime

ALLOWED_LABELS = {
    "role",
    "reason",
    "method",
    "code",
    "le",
    "kind",
    "severity",
    "state",
    "result",
    "op",
    "released",
    "outcome",
}


async def test_metrics_follow_a_session(service: Service, publishers: Any) -> None:
    """Counters and histograms fill from a lossy leg; gauges show it live."""
    await publishers(
        service, "sess-7f3a9c", "client", impairment=ImpairmentConfig(loss_ratio=0.1, seed=5)
    )
    get = service.metrics.registry.get_sample_value
    await wait_for(
        lambda: (
            (get("qualmon_rtt_seconds_count", {"role": "client"}) or 0) >= 2
            and (get("qualmon_rtp_packets_lost_total", {"role": "client"}) or 0) > 0
        ),
        timeout=10.0,
        what="rtt samples and loss",
    )
    text = await service.metrics_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "qualmon_sessions_active",
        "qualmon_legs_active",
        "qualmon_rtp_packets_received",
        "qualmon_rtp_packets_lost",
        "qualmon_audio_dropouts",
        "qualmon_audio_dropout_seconds",
        "qualmon_rtt_seconds",
        "qualmon_jitter_seconds",
        "qualmon_mos",
        "qualmon_whip_requests",
        "qualmon_event_loop_lag_seconds",
    ):
        assert name in families, name
    assert get("qualmon_sessions_active") == 1
    assert get("qualmon_legs_active", {"role": "client"}) == 1
    assert get("qualmon_legs_active", {"role": "therapist"}) == 0
    assert get("qualmon_rtp_packets_received_total", {"role": "client"}) > 0
    assert get("qualmon_mos_count", {"role": "client"}) >= 1
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
    assert "sess-7f3a9c" not in text  # no session id as a label value, anywhere


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_check_metrics_is_clean(service: Service, publishers: Any) -> None:
    """`promtool check metrics` prints nothing for our exposition."""
    await publishers(service, "p", "therapist")
    get = service.metrics.registry.get_sample_value
    await wait_for(
        lambda: (get("qualmon_rtt_seconds_count", {"role": "therapist"}) or 0) >= 1,
        timeout=10.0,
        what="an rtt sample",
    )
    text = await service.metrics_text()
    proc = await asyncio.create_subprocess_exec(
        "promtool",
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(text.encode()), 30)
    assert proc.returncode == 0, (out + err).decode()
    assert out.strip() == b"" and err.strip() == b"", (out + err).decode()
