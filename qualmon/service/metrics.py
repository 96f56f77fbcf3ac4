"""Prometheus metrics: counters fed by the session layer, gauges read fresh on scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.rtp_stats import Dropout
from ..media.rtp_ports import PortPool
from ..media.rtp_source import IGNORED_REASONS, IgnoredReason
from ..reports.faults import STORE_OPS, StoreHealth
from ..reports.pending import PENDING_KINDS
from ..reports.recorder import ReportObserver
from ..sessions.leg import EndReason, LegSnapshot
from ..sessions.observer import SessionEnd, SessionObserver
from ..sessions.registry import SessionRegistry
from ..sessions.session import ConversationDeltas
from ..sessions.snapshot import ROLES

RTT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 2.0)
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2)
# MOS lives in 1..4.5; the E-model's clean-line value is 4.41 with our delay assumptions.
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.2, 4.3, 4.4, 4.5)
TALK_SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# The API-scale goal (issue 17) is p95 <= 20 ms: a bound sits on it.
WHIP_OFFER_BUCKETS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Therapy sessions run 30–90 min; short ones are usually failed starts.
SESSION_DURATION_BUCKETS = (60, 300, 600, 1200, 1800, 2700, 3600, 4500, 5400, 7200, 10800)
DEGRADED_RATIO_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


class QualmonMetrics(SessionObserver, ReportObserver):
    """Owns the registry; observes the session layer and the report recorder."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Our own registry leaves out the default one's process_* series (CPU, memory, fds),
        # which the capacity dashboard needs. No PlatformCollector: its python_info carries
        # version labels outside our bounded label set.
        ProcessCollector(registry=r)
        self.packets_received = Counter(
            "qualmon_rtp_packets_received",
            "RTP packets received from WHIP legs.",
            ["role"],
            registry=r,
        )
        self.packets_lost = Counter(
            "qualmon_rtp_packets_lost",
            "RTP packets lost on the way in, from sequence-number gaps.",
            ["role"],
            registry=r,
        )
        self.dropouts = Counter(
            "qualmon_audio_dropouts",
            "Stretches of >= 150 ms of missing audio (loss or late packets).",
            ["role"],
            registry=r,
        )
        self.dropout_seconds = Counter(
            "qualmon_audio_dropout_seconds",
            "Summed length of audio dropouts.",
            ["role"],
            registry=r,
        )
        self.reconnects = Counter(
            "qualmon_leg_reconnects",
            "WHIP legs replaced by a new POST for the same role.",
            ["role"],
            registry=r,
        )
        self.legs_ended = Counter(
            "qualmon_legs_ended",
            "WHIP legs that ended, by reason "
            "(closed, lost, replaced, failed, never_connected, shutdown).",
            ["role", "reason"],
            registry=r,
        )
        self.whip_requests = Counter(
            "qualmon_whip_requests",
            "WHIP requests by method and HTTP status.",
            ["method", "code"],
            registry=r,
        )
        self.whip_offer_seconds = Histogram(
            "qualmon_whip_offer_seconds",
            "Time this instance took to answer a WHIP offer with 201 (its handler, aiortc's"
            " answer included).",
            buckets=WHIP_OFFER_BUCKETS,
            registry=r,
        )
        self.rtt = Histogram(
            "qualmon_rtt_seconds",
            "Round-trip time per STUN probe on the selected ICE pair.",
            ["role"],
            buckets=RTT_BUCKETS,
            registry=r,
        )
        self.jitter = Histogram(
            "qualmon_jitter_seconds",
            "RFC 3550 interarrival jitter, sampled per leg each second.",
            ["role"],
            buckets=JITTER_BUCKETS,
            registry=r,
        )
        self.mos = Histogram(
            "qualmon_mos",
            "Estimated MOS (E-model), sampled per leg each second.",
            ["role"],
            buckets=MOS_BUCKETS,
            registry=r,
        )
        self.speech_seconds = Counter(
            "qualmon_speech_seconds",
            "Seconds of detected speech (webrtcvad).",
            ["role"],
            registry=r,
        )
        self.overlap_seconds = Counter(
            "qualmon_overlap_seconds", "Seconds in which both roles spoke at once.", registry=r
        )
        self.turns = Counter(
            "qualmon_turns", "Conversation turns taken, by role.", ["role"], registry=r
        )
        self.interruptions = Counter(
            "qualmon_interruptions",
            "Overlaps after which the newcomer held the floor, by the interrupting role.",
            ["role"],
            registry=r,
        )
        self.dropouts_in_speech = Counter(
            "qualmon_audio_dropouts_in_speech",
            "Dropouts with speech just before and after them (words the listener lost).",
            ["role"],
            registry=r,
        )
        self.talk_share = Histogram(
            "qualmon_talk_share",
            "A role's share of all speech, observed once per session when it ends.",
            ["role"],
            buckets=TALK_SHARE_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "qualmon_event_loop_lag_seconds",
            "How late the event loop runs a timer; "
            "a loaded monitor inflates the jitter and RTT it measures.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.memory_trims = Counter(
            "qualmon_memory_trims",
            "Periodic malloc_trim calls, by whether they gave memory back to the OS.",
            ["released"],
            registry=r,
        )
        self.session_duration = Histogram(
            "qualmon_session_duration_seconds",
            "Length of a session, observed once when its report is saved at the end.",
            buckets=SESSION_DURATION_BUCKETS,
            registry=r,
        )
        self.session_degraded = Histogram(
            "qualmon_session_degraded_ratio",
            "Share of a session's time with at least one warning active, observed at its end.",
            buckets=DEGRADED_RATIO_BUCKETS,
            registry=r,
        )
        for released in ("true", "false"):
            self.memory_trims.labels(released=released)
        for role in ROLES:
            for metric in (
                self.packets_received,
                self.packets_lost,
                self.dropouts,
                self.dropout_seconds,
                self.reconnects,
                self.speech_seconds,
                self.turns,
                self.interruptions,
                self.dropouts_in_speech,
            ):
                metric.labels(role=role)

    def on_memory_trim(self, released: bool) -> None:
        self.memory_trims.labels(released="true" if released else "false").inc()

    # -- SessionObserver -------------------------------------------------------

    def on_dropout(self, role: str, dropout: Dropout) -> None:
        self.dropouts.labels(role=role).inc()
        self.dropout_seconds.labels(role=role).inc(dropout.duration_seconds)

    def on_rtt(self, role: str, rtt_seconds: float) -> None:
        self.rtt.labels(role=role).observe(rtt_seconds)

    def on_packets(self, role: str, received: int, lost: int) -> None:
        self.packets_received.labels(role=role).inc(received)
        self.packets_lost.labels(role=role).inc(lost)

    def on_leg_sample(self, role: str, snapshot: LegSnapshot) -> None:
        if snapshot.packets_received == 0:
            return
        self.jitter.labels(role=role).observe(snapshot.jitter_seconds)
        if snapshot.mos is not None:
            self.mos.labels(role=role).observe(snapshot.mos)

    def on_leg_ended(self, role: str, reason: EndReason) -> None:
        self.legs_ended.labels(role=role, reason=reason).inc()

    def on_reconnect(self, role: str) -> None:
        self.reconnects.labels(role=role).inc()

    def on_dropout_in_speech(self, role: str, dropout: Dropout) -> None:
        self.dropouts_in_speech.labels(role=role).inc()

    def on_conversation(self, deltas: ConversationDeltas) -> None:
        for role, seconds in deltas.speech_seconds.items():
            if seconds:
                self.speech_seconds.labels(role=role).inc(seconds)
        if deltas.overlap_seconds:
            self.overlap_seconds.inc(deltas.overlap_seconds)
        for role, n in deltas.turns.items():
            if n:
                self.turns.labels(role=role).inc(n)
        for role, n in deltas.interruptions.items():
            if n:
                self.interruptions.labels(role=role).inc(n)

    def on_session_ended(self, ended: SessionEnd) -> None:
        for role, share in ended.turns.talk_share.items():
            self.talk_share.labels(role=role).observe(share)

    # -- ReportObserver --------------------------------------------------------

    def on_session_report(self, duration_seconds: float, degraded_ratio: float) -> None:
        self.session_duration.observe(duration_seconds)
        self.session_degraded.observe(degraded_ratio)


class LiveCollector(Collector):
    """Gauges of what is live right now, read from the registry on every scrape."""

    def __init__(self, sessions: SessionRegistry, max_legs: int) -> None:
        self._sessions = sessions
        self._max_legs = max_legs

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily(
            "qualmon_sessions_active", "Sessions with at least one live leg."
        )
        sessions.add_metric([], len(self._sessions.live_sessions()))
        yield sessions
        active = GaugeMetricFamily(
            "qualmon_legs_active", "WHIP legs not ended, by role.", labels=["role"]
        )
        stalled = GaugeMetricFamily(
            "qualmon_legs_stalled", "Live WHIP legs without RTP for 2 s or more.", labels=["role"]
        )
        legs = [leg for leg in self._sessions.legs_by_resource.values() if leg.state != "ended"]
        for role in ROLES:
            active.add_metric([role], sum(1 for leg in legs if leg.role == role))
            stalled.add_metric(
                [role], sum(1 for leg in legs if leg.role == role and leg.state == "stalled")
            )
        yield active
        yield stalled
        cap = GaugeMetricFamily("qualmon_legs_capacity", "Configured cap on live WHIP legs.")
        cap.add_metric([], self._max_legs)
        yield cap


def register_live_collector(
    metrics: QualmonMetrics, sessions: SessionRegistry, max_legs: int
) -> None:
    metrics.registry.register(LiveCollector(sessions, max_legs))


class StoreHealthSource(Protocol):
    """The report store, as the exporter sees it."""

    def health(self) -> StoreHealth: ...


class StoreCollector(Collector):
    """The report store's errors, waiting reports and drops, read on every scrape."""

    def __init__(self, store: StoreHealthSource) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        health = self._store.health()
        errors = CounterMetricFamily(
            "qualmon_store_errors",
            "Failed report-store calls, by what they did "
            "(open, checkpoint, final, warning, purge, read).",
            labels=["op"],
        )
        for op in STORE_OPS:
            errors.add_metric([op], health.errors.get(op, 0))
        yield errors
        writable = GaugeMetricFamily(
            "qualmon_store_writable",
            "1 while report writes succeed, 0 while they fail (/readyz says why).",
        )
        writable.add_metric([], 1 if health.writable else 0)
        yield writable
        pending = GaugeMetricFamily(
            "qualmon_store_pending_reports",
            "Reports waiting in memory for the store, by kind "
            "(checkpoint of a live session, final).",
            labels=["kind"],
        )
        dropped = CounterMetricFamily(
            "qualmon_store_reports_dropped",
            "Reports dropped from memory unsaved (the bound was reached), by kind.",
            labels=["kind"],
        )
        for kind in PENDING_KINDS:
            pending.add_metric([kind], health.pending.get(kind, 0))
            dropped.add_metric([kind], health.dropped.get(kind, 0))
        yield pending
        yield dropped
        bound = GaugeMetricFamily(
            "qualmon_store_pending_reports_max",
            "How many reports may wait in memory; past it checkpoints are dropped first.",
        )
        bound.add_metric([], health.max_pending)
        yield bound


def register_store_collector(metrics: QualmonMetrics, store: StoreHealthSource) -> None:
    metrics.registry.register(StoreCollector(store))


CONCEALMENT_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)


class ProbeMetrics:
    """qualmon_probe_samples_total{result} and qualmon_heard_concealment_ratio{role}."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "qualmon_probe_samples",
            "Probe stats samples, accepted or rejected (any 4xx/5xx answer).",
            ["result"],
            registry=registry,
        )
        self.concealment = Histogram(
            "qualmon_heard_concealment_ratio",
            "Audible concealment ratio a participant's probe reported, one per sample interval.",
            ["role"],
            buckets=CONCEALMENT_BUCKETS,
            registry=registry,
        )
        for result in ("accepted", "rejected"):
            self.samples.labels(result=result)
        for role in ROLES:
            self.concealment.labels(role=role)


class RtpIngestMetrics:
    """qualmon_rtp_ignored_packets_total{reason}, and the plain-RTP port gauges read from the
    pool on every scrape."""

    def __init__(self, registry: CollectorRegistry, pool: PortPool) -> None:
        ignored = Counter(
            "qualmon_rtp_ignored_packets",
            "Datagrams on plain-RTP ports not measured, by reason (foreign_source, rtcp, srtp, "
            "malformed, payload_type).",
            ["reason"],
            registry=registry,
        )
        # Children looked up once: a flood of foreign datagrams is counted one by one.
        self._ignored = {reason: ignored.labels(reason=reason) for reason in IGNORED_REASONS}
        registry.register(_PortsCollector(pool))

    def on_ignored(self, reason: IgnoredReason) -> None:
        self._ignored[reason].inc()


class _PortsCollector(Collector):
    def __init__(self, pool: PortPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily("qualmon_rtp_ports_in_use", "Plain-RTP ports bound to legs.")
        in_use.add_metric([], self._pool.in_use)
        yield in_use
        capacity = GaugeMetricFamily(
            "qualmon_rtp_ports_capacity", "Ports in the plain-RTP range (QUALMON_RTP_PORTS)."
        )
        capacity.add_metric([], self._pool.capacity)
        yield capacity
