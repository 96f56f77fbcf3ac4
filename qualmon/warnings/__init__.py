"""Live warnings: each session's measures into the core's rule engine, events out to observers.

May import `qualmon.sessions`, `qualmon.core` and `qualmon.config`; never reports or service.
"""
