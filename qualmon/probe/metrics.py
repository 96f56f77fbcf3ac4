"""Prometheus series of a Probe, read from its newest snapshot on every scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .snapshot import ProbeSnapshot

# (counter?, name, help, value of a snapshot); counters get `_total` in the exposition.
SERIES: tuple[tuple[bool, str, str, Callable[[ProbeSnapshot], float | None]], ...] = (
    (
        True,
        "qualmon_probe_packets_received",
        "RTP audio packets this app received (tapped before aiortc's jitter buffer).",
        lambda s: s.packets_received,
    ),
    (
        True,
        "qualmon_probe_packets_lost",
        "RTP audio packets lost on the way to this app (sequence-number gaps).",
        lambda s: s.packets_lost,
    ),
    (
        True,
        "qualmon_probe_audio_dropouts",
        "Stretches of >= 150 ms of missing incoming audio.",
        lambda s: s.dropouts,
    ),
    (
        True,
        "qualmon_probe_audio_dropout_seconds",
        "Summed length of those dropouts.",
        lambda s: s.dropout_seconds,
    ),
    (
        False,
        "qualmon_probe_loss_ratio",
        "Incoming packet loss over the last 5 s (0-1).",
        lambda s: s.recent_loss_ratio,
    ),
    (
        False,
        "qualmon_probe_jitter_seconds",
        "RFC 3550 interarrival jitter of the incoming audio.",
        lambda s: s.jitter_seconds,
    ),
    (
        False,
        "qualmon_probe_rtt_seconds",
        "Round-trip time on the selected ICE pair (STUN), else from RTCP.",
        lambda s: s.rtt_seconds,
    ),
    (
        False,
        "qualmon_probe_mos",
        "Estimated MOS of the incoming audio (E-model).",
        lambda s: s.mos,
    ),
    (
        True,
        "qualmon_probe_speech_seconds",
        "Speech detected in the incoming audio (only when the app passes its track).",
        lambda s: s.speech_seconds,
    ),
)


class ProbeCollector(Collector):
    """Yields the probe's newest figures; nothing before its first snapshot."""

    def __init__(self, latest: Callable[[], ProbeSnapshot | None]) -> None:
        self._latest = latest

    def describe(self) -> Iterator[Metric]:
        # Names only, so a registry refuses a second probe with the same series.
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        snapshot = self._latest()
        return self._families(snapshot) if snapshot is not None else iter(())

    @staticmethod
    def _families(snapshot: ProbeSnapshot | None) -> Iterator[Metric]:
        for is_counter, name, doc, read in SERIES:
            family: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily(name, doc) if is_counter else GaugeMetricFamily(name, doc)
            )
            value = read(snapshot) if snapshot is not None else None
            if value is not None:
                family.add_metric([], value)
            yield family
