"""Session reports: their model, the recorder, the SQLite store, HTML and the report CLI.

May import `qualmon.sessions`, `qualmon.core` and `qualmon.config`; never warnings or service.
"""
