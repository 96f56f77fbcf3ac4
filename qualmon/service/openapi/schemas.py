"""JSON Schemas (OpenAPI 3.1, JSON Schema 2020-12) of every body the API sends or takes.

Enumerations come from the code's own Literal types and rule table, so a new leg state or
warning kind cannot leave the contract behind. Response objects are closed
(`additionalProperties: false`): a field the code adds without the contract is a mismatch.
"""

from __future__ import annotations

from typing import Any, get_args

from ...core.warnings import DEFAULT_RULES, EventType, Severity
from ...l10n.locales import LOCALES, language_tag
from ...reports.model import ReportEndReason
from ...sessions.leg import EndReason, LegState
from ...sessions.snapshot import ROLES
from ..views import PULSE_ROLE_FIELDS

Schema = dict[str, Any]

KINDS = [rule.kind for rule in DEFAULT_RULES]
ROLE_NAMES = list(ROLES)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def maybe(schema: Schema) -> Schema:
    """The schema or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def closed(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties, all required except `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def per_role(value: Schema) -> Schema:
    """An object keyed by role name."""
    return {
        "type": "object",
        "propertyNames": {"enum": ROLE_NAMES},
        "additionalProperties": value,
    }


def described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description}


COUNT: Schema = {"type": "integer", "minimum": 0}
SECONDS: Schema = {"type": "number", "minimum": 0}
RATIO: Schema = {"type": "number", "minimum": 0, "maximum": 1}
MOS: Schema = {"type": "number", "minimum": 1, "maximum": 4.5}
VOICED_SECONDS = described(
    SECONDS,
    "Voiced time: the role's voice from a word's first sound to its last, pauses of 0.3 s or"
    " more left out; breaths, background noise and the other side's echo are not speech.",
)
INSTANT: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "UTC, ISO 8601 with milliseconds and a Z, e.g. 2026-11-25T13:31:57.733Z.",
}
ROLE: Schema = {"type": "string", "enum": ROLE_NAMES}

HEARD = closed(
    {
        "samples": described(COUNT, "Probe samples accepted."),
        "packets_received": COUNT,
        "packets_lost": described(
            {"type": "integer"}, "Cumulative; W3C lets it go down (duplicates)."
        ),
        "total_samples_received": COUNT,
        "concealed_samples": COUNT,
        "silent_concealed_samples": COUNT,
        "concealment_events": COUNT,
        "window_seconds": described(SECONDS, "Span the window measures cover (≤ 15 s)."),
        "audible_concealment_ratio": maybe(RATIO),
        "loss_ratio": maybe({"type": "number"}),
        "jitter_buffer_delay_seconds": maybe(SECONDS),
        "jitter_seconds": maybe(SECONDS),
        "rtt_seconds": maybe(SECONDS),
        "remote_fraction_lost": maybe(RATIO),
        "audio_level": maybe(RATIO),
        "mos": maybe(MOS),
        "seconds_since_last_sample": SECONDS,
        "video": described(
            maybe(
                closed(
                    {
                        "freezes": described(COUNT, "W3C freezeCount, cumulative."),
                        "freeze_seconds": described(SECONDS, "W3C totalFreezesDuration."),
                        "frames_per_second": maybe({"type": "number", "minimum": 0}),
                        "width": maybe(COUNT),
                        "height": maybe(COUNT),
                    }
                )
            ),
            "The inbound video this participant receives; null without.",
        ),
    }
)

ROLE_SNAPSHOT_PROPERTIES: dict[str, Schema] = {
    "state": {
        "type": "string",
        "enum": [*get_args(LegState), "probe_only"],
        "description": "connecting (answered, no RTP yet), live, stalled (no RTP for 2 s), "
        "ended; probe_only: known from the role's probe alone.",
    },
    "end_reason": maybe({"type": "string", "enum": list(get_args(EndReason))}),
    "packets_received": described(COUNT, "Over every leg the role had."),
    "packets_lost": {"type": "integer"},
    "loss_ratio": described(RATIO, "Lost / expected over every leg the role had."),
    "recent_loss_ratio": described(RATIO, "Over the last 5 s."),
    "jitter_seconds": described(maybe(SECONDS), "RFC 3550 interarrival jitter."),
    "rtt_seconds": described(
        maybe(SECONDS), "Median of the last 3 STUN probes; null until measured or when stale."
    ),
    "mos": described(maybe(MOS), "Estimated MOS, ITU-T G.107 E-model."),
    "dropouts": described(COUNT, "Stretches of ≥ 150 ms of missing audio."),
    "dropout_seconds": SECONDS,
    "bitrate_bps": {"type": "number", "minimum": 0},
    "seconds_since_last_packet": maybe(SECONDS),
    "dropouts_in_speech": COUNT,
    "dropout_in_speech_seconds": SECONDS,
    "reconnects": COUNT,
    "speech_seconds": VOICED_SECONDS,
    "mic_silent": {"type": "boolean"},
    "heard": described(maybe(ref("Heard")), "From the role's probe; null without one."),
    "sfu": described(
        maybe(ref("Sfu")), "From the SFU's events (Janus): its view of the role's path into it."
    ),
    "video": described(
        maybe(ref("Video")),
        "The current leg's video, measured from RTP without decoding; null for audio only.",
    ),
}

_GAP = closed({"median": {"type": "number"}, "p90": {"type": "number"}, "count": COUNT})
TURNS_PROPERTIES: dict[str, Schema] = {
    "talk_share": described(
        per_role(RATIO), "The role's speech seconds / all speech seconds (silence excluded)."
    ),
    "speech_seconds": per_role(VOICED_SECONDS),
    "turn_count": described(
        per_role(COUNT),
        "Turns the role held: a turn bridges the holder's pauses until the other role takes"
        " the floor (a backchannel does not).",
    ),
    "mean_turn_seconds": per_role(maybe(SECONDS)),
    "longest_turn_seconds": per_role(maybe(SECONDS)),
    "overlap_seconds": described(
        SECONDS, "Time both roles' voices were heard at once (voiced time, as speech_seconds)."
    ),
    "interruptions": per_role(COUNT),
    "backchannels": per_role(COUNT),
    "response_gap_seconds": per_role(maybe(_GAP)),
    "silence_ratio": maybe(RATIO),
}

WARNING = closed(
    {
        "kind": {"type": "string", "enum": KINDS},
        "severity": {"type": "string", "enum": list(get_args(Severity))},
        "role": described(maybe(ROLE), "null for a warning about the conversation."),
        "value": {"type": "number"},
        "threshold": {"type": "number"},
        "at": INSTANT,
        "therapist_text": {
            "type": "string",
            "description": "Calm words for the therapist, in the language `locale` names.",
        },
        "sre_text": {"type": "string", "description": "Technical words for operators (English)."},
        "locale": {
            "type": "string",
            "enum": [language_tag(locale) for locale in LOCALES],
            "description": "The language of `therapist_text` (BCP 47): the stream's `?lang=`, "
            "the token's `locale` claim, Accept-Language or QUALMON_LOCALE; for the webhook, "
            "the therapist's publish token's `locale` claim or QUALMON_LOCALE.",
        },
    }
)


def _session(*, with_warnings: bool) -> Schema:
    properties: dict[str, Schema] = {
        "id": {"type": "string"},
        "instance": described(
            {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "The instance that measures the session (QUALMON_INSTANCE_ID, default host-pid).",
        ),
        "state": {"type": "string", "enum": ["live", "ended"]},
        "started_at": INSTANT,
        "ended_at": maybe(INSTANT),
        "legs": described(per_role(ref("Role")), "Only roles with a leg or a probe."),
        "turns": ref("Turns"),
    }
    if with_warnings:
        properties["warnings"] = {"type": "array", "items": ref("Warning")}
    return closed(properties)


PULSE = closed(
    {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["live", "ended"]},
        "legs": per_role(
            closed({name: ROLE_SNAPSHOT_PROPERTIES[name] for name in PULSE_ROLE_FIELDS})
        ),
        "talk_share": per_role(RATIO),
        "warnings": {"type": "array", "items": ref("Warning"), "description": "Active ones."},
        "at": INSTANT,
        "talk_balance_enabled": {"type": "boolean"},
    }
)

STREAM_MESSAGE: Schema = {
    "description": "One WebSocket text message; SSE sends the same `data` under `event:`.",
    "oneOf": [
        closed({"event": {"enum": list(get_args(EventType))}, "data": ref("Warning")}),
        closed({"event": {"const": "snapshot"}, "data": ref("Pulse")}),
        closed({"event": {"const": "heartbeat"}, "data": closed({})}),
        closed(
            {
                "event": {"const": "restart"},
                "data": closed({"retry_after_seconds": SECONDS}),
            }
        ),
    ],
}

SSE_EVENT: Schema = {
    "description": "One Server-Sent Event as its lines read: the `event:` name and the "
    "`data:` line, a JSON object (StreamMessage's `data` for that event).",
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": [*get_args(EventType), "snapshot", "heartbeat", "restart"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
"What an OpenAPI 3.0/3.1 `text/event-stream` schema describes: each event, not the stream."

LEG_AGGREGATE = closed(
    {
        "packets_received": COUNT,
        "packets_lost": {"type": "integer"},
        "loss_ratio": RATIO,
        "jitter_p50_seconds": maybe(SECONDS),
        "jitter_p95_seconds": maybe(SECONDS),
        "rtt_p50_seconds": maybe(SECONDS),
        "rtt_p95_seconds": maybe(SECONDS),
        "mos_min": maybe(MOS),
        "mos_mean": maybe(MOS),
        "dropouts": COUNT,
        "dropout_seconds": SECONDS,
        "dropouts_in_speech": COUNT,
        "dropout_in_speech_seconds": SECONDS,
        "speech_seconds": SECONDS,
        "reconnects": COUNT,
        "end_reason": described(maybe({"type": "string"}), "How the last leg ended."),
    }
)

_REPORT_END = maybe({"type": "string", "enum": list(get_args(ReportEndReason))})
_TIMELINE_POINT = closed(
    {
        "t_seconds": described(SECONDS, "Bucket start, seconds since the session started."),
        "recent_loss_ratio": maybe(RATIO),
        "jitter_seconds": maybe(SECONDS),
        "rtt_seconds": maybe(SECONDS),
        "mos": maybe(MOS),
        "speaking": {"type": "boolean"},
        "stalled": {"type": "boolean"},
        "dropouts": described(COUNT, "The role's dropouts so far."),
        "video_fps_min": described(
            maybe({"type": "number", "minimum": 0}),
            "Lowest frame rate sampled in the bucket; null without video.",
        ),
        "video_frozen": described(
            maybe({"type": "boolean"}), "A W3C video freeze in the bucket; null without video."
        ),
    }
)
_DROPOUT = closed(
    {
        "t_seconds": SECONDS,
        "duration_seconds": SECONDS,
        "in_speech": maybe({"type": "boolean"}),
    }
)
_WARNING_RECORD = closed(
    {
        "kind": {"type": "string"},
        "severity": {"type": "string", "enum": list(get_args(Severity))},
        "role": maybe(ROLE),
        "raised_at": INSTANT,
        "cleared_at": maybe(INSTANT),
        "value": maybe({"type": "number"}),
        "threshold": maybe({"type": "number"}),
    }
)
_REPORT_HEAD: dict[str, Schema] = {
    "id": {"type": "string"},
    "started_at": INSTANT,
    "ended_at": maybe(INSTANT),
    "checkpoint_at": described(INSTANT, "Last time the report was written."),
    "end_reason": _REPORT_END,
    "duration_seconds": SECONDS,
    "roles": {"type": "array", "items": ROLE},
}
REPORT = closed(
    {
        **_REPORT_HEAD,
        "state": {"type": "string", "enum": ["live", "ended"]},
        "legs": per_role(ref("LegAggregate")),
        "turns": described(
            {"type": "object", "properties": TURNS_PROPERTIES, "additionalProperties": False},
            "The session JSON's turns as last saved (empty before the first checkpoint).",
        ),
        "degraded_ratio": described(RATIO, "Share of the session with a warning active."),
        "quality_degraded_ratio": described(
            RATIO, "Share of 5 s buckets where some role's audio was not good."
        ),
        "warnings": {"type": "array", "items": _WARNING_RECORD},
        "timeline": closed(
            {
                "bucket_seconds": SECONDS,
                "points": per_role({"type": "array", "items": _TIMELINE_POINT}),
            }
        ),
        "speech": per_role(
            {
                "type": "array",
                "items": {"type": "array", "prefixItems": [SECONDS, SECONDS], "items": False},
                "description": "[start, end] of each speech segment, session seconds.",
            }
        ),
        "dropouts": per_role({"type": "array", "items": _DROPOUT}),
        "summary": {"type": "string", "description": "Plain sentences for the clinician."},
        "live": described(ref("SessionListed"), "The session JSON, while it is live."),
    },
    optional=("live",),
)
REPORT_LIST = closed({"reports": {"type": "array", "items": closed(_REPORT_HEAD)}})

SCHEMAS: dict[str, Schema] = {
    "Session": _session(with_warnings=True),
    "SessionListed": _session(with_warnings=False),
    "Role": closed(ROLE_SNAPSHOT_PROPERTIES),
    "Heard": HEARD,
    "Turns": closed(TURNS_PROPERTIES),
    "Warning": WARNING,
    "Pulse": PULSE,
    "StreamMessage": STREAM_MESSAGE,
    "Report": REPORT,
    "LegAggregate": LEG_AGGREGATE,
    "ReportList": REPORT_LIST,
    "InternalError": closed({"error": {"const": "internal error"}}),
}
