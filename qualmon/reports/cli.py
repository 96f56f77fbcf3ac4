"""`qualmon report` and `qualmon purge`: the report store from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..core.instants import iso, parse_instant
from ..l10n.catalogs import CatalogError, load_localizer
from ..l10n.locales import DEFAULT_LOCALE, LOCALES, match_locale
from ..l10n.localizer import Localizer
from .document import report_json
from .faults import STORE_ERRORS, describe
from .model import SessionReport
from .pg_store import is_postgresql
from .sql_store import BaseReportStore
from .stores import open_store, store_label
from .summary import clinician_summary

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


def add_lang_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lang",
        help="language of the clinician summary: a tag such as de or pt-BR "
        f"(QUALMON_LOCALE, default {DEFAULT_LOCALE})",
    )


def _localizer(args: argparse.Namespace) -> Localizer | None:
    """The summary's language: --lang, else QUALMON_LOCALE, else English; None (after a
    message) if no catalog speaks it or it cannot be loaded."""
    wish = args.lang or os.environ.get("QUALMON_LOCALE") or DEFAULT_LOCALE
    locale = match_locale(wish)
    if locale is None:
        print(f"qualmon: no catalog for {wish[:40]!r} (have {', '.join(LOCALES)})", file=sys.stderr)
        return None
    try:
        return load_localizer(locale)
    except CatalogError as exc:
        print(f"qualmon: {exc}", file=sys.stderr)
        return None


def text_report(report: SessionReport, loc: Localizer) -> str:
    """The summary (in `loc`'s language) and per-role numbers, for a terminal."""
    state = report.end_reason or "live (last saved " + str(iso(report.checkpoint_at)) + ")"
    lines = [
        f"Session {report.session_id}: {state}",
        f"Started {iso(report.started_at)}, {report.duration_seconds:.0f} s",
        "",
        clinician_summary(report, loc),
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
    loc = _localizer(args)
    if loc is None:
        return 2
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
        print(json.dumps(report_json(report, loc), indent=2, ensure_ascii=False))
    else:
        print(text_report(report, loc))
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
