"""Operator endpoints: draining an instance."""

from __future__ import annotations

from .common import Operation, answer, json_body, operation, security
from .schemas import Schema

DRAIN_ANSWER: Schema = {
    "type": "object",
    "properties": {
        "state": {"enum": ["draining"]},
        "live_legs": {"type": "integer", "minimum": 0, "description": "Legs still measured."},
        "live_sessions": {"type": "integer", "minimum": 0},
        "deadline": {
            "type": "string",
            "format": "date-time",
            "description": "When legs still live are ended as `shutdown` (QUALMON_DRAIN_SECONDS "
            "after the drain began).",
        },
        "seconds_left": {"type": "number", "minimum": 0},
    },
    "required": ["state", "live_legs", "live_sessions", "deadline", "seconds_left"],
    "additionalProperties": False,
}


def admin_paths() -> dict[str, dict[str, Operation]]:
    return {
        "/v1/admin/drain": {
            "post": operation(
                operation_id="drain",
                tag="Operations",
                summary="Drain this instance",
                description="The same as SIGTERM to `qualmon serve` (`qualmon drain` posts it). "
                "`/readyz` answers 503 `draining`; a leg of a session not live here is refused "
                "with 503 + `Retry-After`; live legs go on until they end or "
                "QUALMON_DRAIN_SECONDS pass; then the remaining legs end as `shutdown`, every "
                "report is saved and the process exits 0. Idempotent: a repeated request "
                "changes nothing and answers the same deadline. Under `serve --workers` every "
                "worker drains.",
                auth=security("admin"),
                responses={
                    "202": answer(
                        "Draining; what is still live and until when.",
                        json_body(
                            DRAIN_ANSWER,
                            {
                                "state": "draining",
                                "live_legs": 2,
                                "live_sessions": 1,
                                "deadline": "2026-11-30T12:10:00.000Z",
                                "seconds_left": 600.0,
                            },
                        ),
                    )
                },
            )
        }
    }
