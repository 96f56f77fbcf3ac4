"""The one error a bad setting raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""
