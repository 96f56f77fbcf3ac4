"""What an SFU measured of a participant's path into it (`legs.<role>.sfu`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SfuSnapshot:
    """The SFU's own statistics of the connection a participant publishes on: the client→SFU
    path, which a forwarded leg cannot see (it sees the SFU→qualmon path only)."""

    packets_received: int | None
    "Packets the SFU received from the participant, on its current connection."
    packets_lost: int | None
    "Packets the SFU found missing from what the participant sent."
    loss_ratio: float | None
    "packets_lost / (packets_received + packets_lost)."
    link_quality: int | None
    "0..100, the SFU's score of the incoming link (Janus `in-link-quality`)."
    media_link_quality: int | None
    "0..100, the same from loss alone (Janus `in-media-link-quality`)."
    jitter_seconds: float | None
    "Interarrival jitter the SFU measured on what it received."
    rtt_seconds: float | None
    "The SFU's latest RTT to the participant (from its receiving connections)."
