"""What the report SQL needs of a database connection, so one text serves both stores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Rows(Protocol):
    """A statement's result: sqlite3's and psycopg's cursors both fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """A connection inside the caller's transaction. Statements use `?` placeholders and
    SQL both SQLite and PostgreSQL accept (`ON CONFLICT … DO UPDATE`, `RETURNING`)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Rows: ...
