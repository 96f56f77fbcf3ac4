"""The API's JSON forms of typed values: sessions, roles, warnings and stream messages.

Everything below the service hands over frozen dataclasses; they become JSON here and
nowhere else (the report store has its own forms in `reports/model.py`). The therapist's
words are translated here too, into the reader's catalog: the core speaks English.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..core.instants import iso
from ..core.warning_texts import therapist_text
from ..core.warnings import WarningEvent
from ..l10n.localizer import Localizer
from ..reports.model import turns_json
from ..sessions.snapshot import RoleSnapshot, SessionSnapshot
from ..warnings.runtime import Pulse, Restart, StreamMessage

PULSE_ROLE_FIELDS = (
    "state",
    "loss_ratio",
    "recent_loss_ratio",
    "jitter_seconds",
    "rtt_seconds",
    "mos",
    "dropouts",
    "dropouts_in_speech",
    "mic_silent",
)
"What an event stream's periodic snapshot tells of each role (the widget's needs)."


def role_json(role: RoleSnapshot) -> dict[str, Any]:
    return asdict(role)


def warning_json(event: WarningEvent, loc: Localizer) -> dict[str, Any]:
    """A raised or cleared warning, the therapist's words in `loc`'s language (`locale`, a
    BCP 47 tag); its type travels as the stream's event name. SRE words stay English."""
    doc = asdict(event)
    doc.pop("type")
    doc["at"] = iso(event.at)
    doc["therapist_text"] = therapist_text(
        event.kind, event.role, cleared=event.type == "cleared", gettext=loc.gettext
    )
    doc["locale"] = loc.tag
    return doc


def session_json(
    snapshot: SessionSnapshot,
    warnings: tuple[WarningEvent, ...] | None = None,
    *,
    instance: str,
    loc: Localizer,
) -> dict[str, Any]:
    """`GET /v1/sessions/{id}`; `warnings` only where the caller asked for them; `instance`
    names the instance that measures the session (this one: a session's snapshot lives on
    its owner only)."""
    doc: dict[str, Any] = {
        "id": snapshot.id,
        "instance": instance,
        "state": "live" if snapshot.live else "ended",
        "started_at": iso(snapshot.started_at),
        "ended_at": iso(snapshot.ended_at),
        "legs": {name: role_json(role) for name, role in snapshot.roles.items()},
        "turns": turns_json(snapshot.turns),
    }
    if warnings is not None:
        doc["warnings"] = [warning_json(w, loc) for w in warnings]
    return doc


def pulse_json(pulse: Pulse, loc: Localizer) -> dict[str, Any]:
    session = pulse.session
    return {
        "id": session.id,
        "state": "live" if session.live else "ended",
        "legs": {
            name: {field: getattr(role, field) for field in PULSE_ROLE_FIELDS}
            for name, role in session.roles.items()
        },
        "talk_share": session.turns.talk_share,
        "warnings": [warning_json(w, loc) for w in pulse.warnings],
        "at": iso(pulse.at_seconds),
    }


def stream_message(message: StreamMessage, loc: Localizer) -> tuple[str, dict[str, Any]]:
    """(event name, data) of one event-stream message, for SSE and WebSocket alike."""
    if isinstance(message, WarningEvent):
        return message.type, warning_json(message, loc)
    if isinstance(message, Pulse):
        return "snapshot", pulse_json(message, loc)
    if isinstance(message, Restart):
        return "restart", {"retry_after_seconds": message.retry_after_seconds}
    raise TypeError(f"not a stream message: {type(message).__name__}")
