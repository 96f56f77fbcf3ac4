"""`qualmon report` and `qualmon purge`: the report store from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..core.instants import iso, parse_instant
from .faults import STORE_ERRORS, describe
from .model import SessionReport, clinician_summary, report_json
from .pg_store import is_postgresql
from .sql_store import BaseReportStore
from .stores import open_store, store_label

DEFAULT_DB = "qualmon.db"


def add_store_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        dest="db_path",
        help=f"SQLite store path or postgresql:// URL (QUALMON_DB, default {DEFAULT_DB})",
    )


def _open(args: argparse.Namespace) -> BaseReportStore | None:
    path = args.db_path or os.environ.get("QUALMON_DB") or DEFAULT_DB
    if not is_postgresql(path) and not os.path.exists(path):
        # Opening would create an empty store; a wrong path deserves a clear word instead.
        print(f"qualmon: no report store at {path} (set QUALMON_DB or --db)", file=sys.stderr)
        return None
    try:
        return open_store(path)
    except STORE_ERRORS as exc:
        # The label, not the path: a PostgreSQL URL holds a password.
        print(
            f"qualmon: cannot open the report store {store_label(path)}: {describe(exc)}",
            file=sys.stderr,
        )
        return None


def _ms(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 1000:.{digits}f} ms"


def text_report(report: SessionReport) -> str:
    """The summary and per-role numbers, for a terminal."""
    state = report.end_reason or "live (last saved " + str(iso(report.checkpoint_at)) + ")"
    lines = [
        f"Session {report.session_id}: {state}",
        f"Started {iso(report.started_at)}, {report.duration_seconds:.0f} s",
        "",
        clinician_summary(report),
        "",
    ]
    header: tuple[str, ...] = ("role", "received", "lost", "jitter p50/p95", "RTT p50/p95")
    header += ("MOS min/mean", "dropouts", "in speech", "speech")
    rows = [header]
    for leg in report.legs:
        mos = (
            "–"
            if leg.mos_min is None or leg.mos_mean is None
            else (f"{leg.mos_min:.2f}/{leg.mos_mean:.2f}")
        )
        rows.append(
            (
                leg.role,
                str(leg.packets_received),
                f"{leg.packets_lost} ({leg.loss_ratio * 100:.1f} %)",
                f"{_ms(leg.jitter_p50_seconds, 1)}/{_ms(leg.jitter_p95_seconds, 1)}",
                f"{_ms(leg.rtt_p50_seconds)}/{_ms(leg.rtt_p95_seconds)}",
                mos,
                f"{leg.dropouts} ({leg.dropout_seconds:.1f} s)",
                str(leg.dropouts_in_speech),
                f"{leg.speech_seconds:.0f} s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    if report.warnings:
        lines += ["", f"{len(report.warnings)} warning(s):"]
        for w in report.warnings:
            offset = w.raised_at - report.started_at
            lines.append(f"  {w.kind} ({w.severity}) {w.role or 'session'} at {offset:.0f} s")
    return "\n".join(line.rstrip() for line in lines)


def run_report(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    try:
        report = store.load(args.session_id)
    finally:
        store.close()
    if report is None:
        print(f"qualmon: no report for session {args.session_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(text_report(report))
    return 0


def run_purge(args: argparse.Namespace) -> int:
    try:
        before = parse_instant(args.before)
    except ValueError:
        print("qualmon: --before must be an ISO 8601 date or date-time", file=sys.stderr)
        return 2
    store = _open(args)
    if store is None:
        return 2
    try:
        removed = store.purge(before)
    finally:
        store.close()
    print(
        f"removed {removed} report{'s' if removed != 1 else ''} of sessions ended before "
        f"{iso(before)}"
    )
    return 0
