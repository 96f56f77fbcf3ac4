"""Sessions: one therapy session's legs on one clock, and the registry that admits them.

May import `qualmon.core` (the leg-source interface included) and `qualmon.config`; never the
media edge, nor anything above (warnings, reports, service).
"""
