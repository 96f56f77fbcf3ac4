"""The media edge: offer validation, WHIP sources, RTP tap, speech decoding, STUN RTT probe.

Sources implement `core.leg_source`; may import `qualmon.core` and `qualmon.config` only.
"""
