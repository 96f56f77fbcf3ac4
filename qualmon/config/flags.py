"""argparse types shared by the `qualmon` commands: counts and ports in ASCII digits."""

from __future__ import annotations

import argparse

from ..core.ascii_digits import parse_ascii_int

MAX_WORKERS = 64
"`serve --workers` and `bench --workers` take 1..this many worker processes."


def integer(text: str) -> int:
    """An integer in ASCII digits (int() would also read "٣" as 3).

    The sign is allowed so that `--port -1` gets the settings' own range message.
    """
    magnitude = parse_ascii_int(text.removeprefix("-"), max_digits=9)
    if magnitude is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer in digits 0-9")
    return -magnitude if text.startswith("-") else magnitude


def worker_count(text: str) -> int:
    """A worker count 1..MAX_WORKERS."""
    count = parse_ascii_int(text, max_digits=3)
    if count is None or not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"--workers must be 1..{MAX_WORKERS}, got {text!r}")
    return count
