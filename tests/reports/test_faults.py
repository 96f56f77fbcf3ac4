"""Storage faults: real SQLite errors named, the retry timer, a log line a minute."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from qualmon.reports.faults import (
    RETRY_MAX_SECONDS,
    FaultLine,
    FaultLog,
    fault_reason,
    out_of_space,
    retry_delay,
)

from .sqlite_errors import full_disk_error, io_error, locked_error, read_only_error


def never() -> bool:
    return False


def always() -> bool:
    return True


def test_sqlite_errors_are_named_for_readyz(tmp_path: Path) -> None:
    """Each fault the service meets gets a few words an operator acts on."""
    assert fault_reason(full_disk_error(), out_of_space=never) == "disk full"
    assert fault_reason(read_only_error(tmp_path / "ro.db"), out_of_space=never) == "read-only"
    assert (
        fault_reason(locked_error(tmp_path / "locked.db"), out_of_space=never)
        == "locked by another process"
    )
    # SQLite cannot tell a write refused over the file-size limit from a broken disk.
    assert fault_reason(io_error(), out_of_space=always) == "disk full"
    assert fault_reason(io_error(), out_of_space=never) == "I/O error"
    assert fault_reason(OSError(errno.ENOSPC, "no space"), out_of_space=never) == "disk full"
    assert fault_reason(OSError(errno.EROFS, "read-only fs"), out_of_space=never) == "read-only"
    assert fault_reason(sqlite3.IntegrityError("constraint"), out_of_space=never) == (
        "write refused"
    )


def test_a_finite_file_size_limit_reached_counts_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prlimit --fsize` (RLIMIT_FSIZE) at or below the store's files: out of space."""
    db = tmp_path / "reports.db"
    db.write_bytes(b"x" * 4096)
    limits = {"now": (4096, -1)}
    monkeypatch.setattr("resource.getrlimit", lambda _: limits["now"])
    monkeypatch.setattr("resource.RLIM_INFINITY", -1)
    assert out_of_space(str(db))
    limits["now"] = (-1, -1)
    assert not out_of_space(str(db))
    limits["now"] = (1 << 40, -1)
    assert not out_of_space(str(db))
    assert not out_of_space(":memory:")


def test_retries_back_off_to_thirty_seconds() -> None:
    assert [retry_delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert RETRY_MAX_SECONDS == 30.0


def test_one_line_a_minute_about_a_fault_and_one_when_it_ends() -> None:
    """Failures every second: a line at the first, then one a minute counting the ones in
    between; a recovery line only after a fault that was told."""
    faults = FaultLog(every_seconds=60.0)
    lines = {t: faults.failed(float(t)) for t in range(0, 125)}
    told = {t: line for t, line in lines.items() if line is not None}
    assert told == {
        0: FaultLine(first=True, failures=1),
        60: FaultLine(first=False, failures=60),
        120: FaultLine(first=False, failures=60),
    }
    assert faults.recovered()
    # Flapping: failing again 10 s after the last line is not told, nor is its recovery.
    assert faults.failed(130.0) is None
    assert not faults.recovered()
    assert faults.failed(181.0) == FaultLine(first=True, failures=1)
