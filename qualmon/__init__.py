"""qualmon: session-quality monitor for online therapy over WebRTC."""

__version__ = "0.1.0"
