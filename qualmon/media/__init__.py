"""The aiortc edge: offer validation, WHIP legs, RTP tap, STUN RTT probe."""
