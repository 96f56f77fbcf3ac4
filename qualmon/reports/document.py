"""A stored report as the API serves it and `qualmon report --json` prints it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..core.instants import iso
from ..l10n.localizer import Localizer
from .model import BUCKET_SECONDS, SessionReport, degraded_ratio, quality_degraded_ratio
from .summary import clinician_summary


def report_json(report: SessionReport, loc: Localizer) -> dict[str, Any]:
    """The report; its `summary` in `loc`'s language, everything else codes and numbers."""
    end = report.ended_at or report.checkpoint_at
    roles = report.roles
    warned = degraded_ratio(report.warnings, report.started_at, end)
    degraded = quality_degraded_ratio(report)
    return {
        "id": report.session_id,
        "state": "ended" if report.ended_at is not None else "live",
        "started_at": iso(report.started_at),
        "ended_at": iso(report.ended_at),
        "checkpoint_at": iso(report.checkpoint_at),
        "end_reason": report.end_reason,
        "duration_seconds": round(report.duration_seconds, 3),
        "roles": list(roles),
        "legs": {leg.role: _without_role(asdict(leg)) for leg in report.legs},
        "turns": report.turns,
        "degraded_ratio": warned,
        "quality_degraded_ratio": degraded,
        "warnings": [
            {**asdict(w), "raised_at": iso(w.raised_at), "cleared_at": iso(w.cleared_at)}
            for w in report.warnings
        ],
        "timeline": {
            "bucket_seconds": BUCKET_SECONDS,
            "points": {
                role: [_without_role(asdict(p)) for p in report.points if p.role == role]
                for role in roles
            },
        },
        "speech": {
            role: [[s.start_seconds, s.end_seconds] for s in report.speech if s.role == role]
            for role in roles
        },
        "dropouts": {
            role: [_without_role(asdict(d)) for d in report.dropouts if d.role == role]
            for role in roles
        },
        "summary": clinician_summary(report, loc, degraded=degraded, warned=warned),
    }


def _without_role(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("role", None)
    doc.pop("index", None)
    return doc
