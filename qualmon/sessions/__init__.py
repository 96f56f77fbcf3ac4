"""Sessions: one therapy session's legs on one clock, and the registry that admits them.

May import `qualmon.core`, `qualmon.config` and the leg-source interface of `qualmon.media`;
nothing above (warnings, reports, service).
"""
