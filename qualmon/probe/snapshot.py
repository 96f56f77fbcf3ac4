"""What a Probe measured, and the W3C-shaped sample it posts; pure, no IO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.emodel import DEFAULT_PARAMS, EModelParams, estimated_mos
from ..core.rtp_stats import RtpSnapshot

PTIME_SECONDS = 0.020
"aiortc's Opus packets carry 20 ms; the concealment estimate assumes it."


@dataclass(frozen=True)
class RemoteInbound:
    """RTCP receiver-report figures aiortc keeps for this app's own outgoing audio."""

    stream_id: str
    round_trip_time_seconds: float | None
    fraction_lost: float | None


@dataclass(frozen=True)
class StreamSample:
    """One tapped audio receiver at one moment."""

    stream_id: str
    rtp: RtpSnapshot
    total_samples: int
    "Audio samples the packets expected so far carried (packets × 20 ms × clock rate)."
    concealed_samples: int
    "Of those, samples of packets that never came: the audio this app did not get."


@dataclass(frozen=True)
class ProbeSnapshot:
    """What the app hears right now, summed over its incoming audio streams."""

    taken_at: float
    "Wall-clock seconds since the epoch."
    streams: int
    "Incoming audio streams tapped (one per receiver that got packets)."
    packets_received: int
    packets_lost: int
    "From sequence-number gaps, before aiortc's jitter buffer."
    loss_ratio: float
    "Cumulative lost / expected."
    recent_loss_ratio: float
    "Over the last 5 s (the worst stream)."
    jitter_seconds: float
    "RFC 3550 interarrival jitter, computed on every arrival (the worst stream)."
    dropouts: int
    "Stretches of ≥ 150 ms of missing audio."
    dropout_seconds: float
    bitrate_bps: float
    seconds_since_last_packet: float | None
    rtt_seconds: float | None
    "Median of recent STUN transactions on the selected pair, else RTCP's roundTripTime."
    remote_fraction_lost: float | None
    "Loss of this app's outgoing audio as the far end reports it (RTCP); None if it sends none."
    mos: float | None
    "Estimated MOS (E-model, as the service computes it for its legs); None before a packet."
    speech_seconds: float | None
    "Speech in the incoming audio (webrtcvad); None unless the app passed its track."
    mic_silent: bool | None
    "The far end sends packets but no sound for 30 s; None unless the app passed its track."


def summarize(
    streams: list[StreamSample],
    *,
    taken_at: float,
    now: float,
    rtt_seconds: float | None,
    remote: list[RemoteInbound],
    speech_seconds: float | None = None,
    mic_silent: bool | None = None,
    emodel: EModelParams = DEFAULT_PARAMS,
) -> ProbeSnapshot:
    """One snapshot from the streams' RTP statistics (now: monotonic, as their arrivals)."""
    rtps = [s.rtp for s in streams]
    received = sum(r.packets_received for r in rtps)
    expected = sum(r.packets_expected for r in rtps)
    lost = sum(r.packets_lost for r in rtps)
    recent_loss = max((r.recent_loss_ratio for r in rtps), default=0.0)
    jitter = max((r.jitter_seconds for r in rtps), default=0.0)
    if rtt_seconds is None:
        rtt_seconds = next(
            (r.round_trip_time_seconds for r in remote if r.round_trip_time_seconds is not None),
            None,
        )
    last = [r.last_packet_at for r in rtps if r.last_packet_at is not None]
    mos = None
    if received:
        mos = estimated_mos(
            rtt_seconds=rtt_seconds,
            jitter_seconds=jitter,
            loss_ratio=recent_loss,
            params=emodel,
        )
    return ProbeSnapshot(
        taken_at=taken_at,
        streams=len(streams),
        packets_received=received,
        packets_lost=lost,
        loss_ratio=lost / expected if expected else 0.0,
        recent_loss_ratio=recent_loss,
        jitter_seconds=jitter,
        dropouts=sum(r.dropouts for r in rtps),
        dropout_seconds=sum(r.dropout_seconds for r in rtps),
        bitrate_bps=sum(r.bitrate_bps for r in rtps),
        seconds_since_last_packet=now - max(last) if last else None,
        rtt_seconds=rtt_seconds,
        remote_fraction_lost=next(
            (r.fraction_lost for r in remote if r.fraction_lost is not None), None
        ),
        mos=mos,
        speech_seconds=speech_seconds,
        mic_silent=mic_silent,
    )


def w3c_sample(
    streams: list[StreamSample],
    *,
    timestamp_ms: float,
    stun_rtt_seconds: float | None,
    remote: list[RemoteInbound],
) -> dict[str, Any] | None:
    """The body of POST /v1/sessions/{id}/stats (cumulative counters); None before a packet.

    aiortc has no concealment counters: concealedSamples counts the samples of lost
    packets (what a listener misses), silentConcealedSamples is 0, and there are no
    jitter-buffer figures, so the service assumes a buffer of twice the jitter.
    """
    stats: list[dict[str, Any]] = [
        {
            "type": "inbound-rtp",
            "kind": "audio",
            "id": s.stream_id,
            "packetsReceived": s.rtp.packets_received,
            "packetsLost": s.rtp.packets_lost,
            "jitter": s.rtp.jitter_seconds,
            "concealedSamples": s.concealed_samples,
            "silentConcealedSamples": 0,
            "totalSamplesReceived": s.total_samples,
        }
        for s in streams
        if s.rtp.packets_received
    ]
    if not stats:
        return None
    for r in remote:
        entry: dict[str, Any] = {"type": "remote-inbound-rtp", "kind": "audio", "id": r.stream_id}
        if r.round_trip_time_seconds is not None:
            entry["roundTripTime"] = r.round_trip_time_seconds
        if r.fraction_lost is not None:
            entry["fractionLost"] = min(1.0, max(0.0, r.fraction_lost))
        stats.append(entry)
    if stun_rtt_seconds is not None:
        stats.append(
            {
                "type": "candidate-pair",
                "id": "qualmon-selected-pair",
                "nominated": True,
                "currentRoundTripTime": stun_rtt_seconds,
            }
        )
    return {"timestamp": timestamp_ms, "stats": stats}
