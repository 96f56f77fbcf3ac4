"""Session reports: their model, the recorder, the SQLite store, HTML and the report CLI.

A report is a session's measures and its warnings over time, so this layer sits above
both: it may import `qualmon.warnings`, `qualmon.sessions`, `qualmon.core` and
`qualmon.config`; never the service.
"""
