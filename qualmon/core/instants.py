"""Instants as the API writes them: UTC ISO 8601 with milliseconds, and back to epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def parse_instant(text: str) -> float:
    """An ISO 8601 date or date-time as epoch seconds; no zone means UTC. ValueError if not."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: None) -> None: ...
@overload
def iso(ts: float | None) -> str | None: ...


def iso(ts: float | None) -> str | None:
    """Unix seconds as UTC ISO 8601 with milliseconds and a Z (the API's time format)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
