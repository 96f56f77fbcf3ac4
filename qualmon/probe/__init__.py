"""Probes that report what a participant hears: `Probe` for aiortc apps (browsers use /probe.js)."""

from .probe import Probe, session_from_token
from .snapshot import ProbeSnapshot

__all__ = ["Probe", "ProbeSnapshot", "session_from_token"]
