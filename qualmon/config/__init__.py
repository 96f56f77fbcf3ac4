"""Service settings from the environment and command-line flags (`values.py`: the checks of
settings given as text, shared with the command line)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ..core.ascii_digits import parse_ascii_float, parse_ascii_int
from ..core.emodel import EModelParams
from ..core.speech import SpeechParams
from ..core.turns import TurnParams
from ..core.voice import VoiceParams
from ..core.warnings import DEFAULT_RULES, Rule, override_rules
from ..l10n.locales import DEFAULT_LOCALE, LOCALES, exact_locale
from .errors import ConfigError as ConfigError
from .values import (
    MAX_PORT as MAX_PORT,
)
from .values import (
    advertise_url as advertise_url,
)
from .values import (
    ice_addresses as ice_addresses,
)
from .values import (
    instance_id as instance_id,
)
from .values import (
    janus_url as janus_url,
)
from .values import (
    rtp_host as rtp_host,
)
from .values import (
    rtp_ports as rtp_ports,
)


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to run; defaults suit one small instance."""

    secret: str
    "HS256 key for tokens (QUALMON_SECRET); required."
    host: str = "127.0.0.1"
    port: int = 8080
    max_legs: int = 100
    "Live WHIP legs allowed at once (QUALMON_MAX_LEGS); more get 503."
    db_path: str = field(default="qualmon.db", repr=False)
    "Report store (QUALMON_DB): a SQLite path, or a postgresql:// URL (holds a password)."
    retention_days: float = 30.0
    "Stored reports of sessions that ended longer ago are purged (QUALMON_RETENTION_DAYS)."
    report_checkpoint_seconds: float = 10.0
    "A live session's report is saved this often, so a crash loses at most this much."
    ice_addresses: tuple[str, ...] | None = None
    "Host-candidate addresses (QUALMON_ICE_ADDRESSES, comma-separated); None: aioice's choice."
    max_offer_bytes: int = 65536
    stall_after_seconds: float = 2.0
    "No RTP for this long: leg `stalled`."
    lost_after_seconds: float = 20.0
    "No RTP for this long: leg ended as `lost`."
    connect_timeout_seconds: float = 20.0
    "An answered offer that brings no media within this is reaped."
    ended_retention_seconds: float = 600.0
    "Ended sessions stay readable in memory this long (as a frozen snapshot of a few KB)."
    settle_seconds: float = 2.0
    "An ended session is kept whole this long (and until its legs have closed) so the"
    " warnings runtime and the report recorder take their last look; then it is compacted."
    rtt_probe_interval_seconds: float = 1.0
    dropout_threshold_seconds: float = 0.150
    recent_window_seconds: float = 5.0
    tick_seconds: float = 0.25
    "How often leg timers are checked."
    close_timeout_seconds: float = 5.0
    "Closing a peer connection may hang on a dead peer; give up after this."
    retry_after_seconds: int = 5
    emodel: EModelParams = field(default_factory=EModelParams)
    speech_enabled: bool = True
    "Speech activity and talk turns (QUALMON_SPEECH=off keeps only network measures)."
    fast_rtp: bool = True
    "A measured Opus leg's SRTP packets skip aiortc's queue, task hop and decoder-only work"
    " (media/fast_rtp.py); QUALMON_FAST_RTP=off takes aiortc's usual way (same numbers)."
    vad_mode: int = 3
    "webrtcvad aggressiveness 0..3 (QUALMON_VAD_MODE). 3: on the realistic corpus mode 2 calls"
    " floors and echo speech in whole runs the voice classifier cannot take apart."
    speech: SpeechParams = field(default_factory=SpeechParams)
    turns: TurnParams = field(default_factory=TurnParams)
    voice: VoiceParams = field(default_factory=VoiceParams)
    "Which webrtcvad speech frames are the speaker's voice (core/voice.py)."
    warning_rules: tuple[Rule, ...] = DEFAULT_RULES
    "Warning thresholds and windows (core/warnings.py); QUALMON_TALK_BALANCE=on enables that"
    " rule; QUALMON_WARNING_RULES='kind.field=value,…' overrides any of them."
    webhook_url: str | None = field(default=None, repr=False)
    "POST raised/cleared warnings here (QUALMON_WEBHOOK_URL); None: no webhook."
    webhook_secret: str | None = field(default=None, repr=False)
    "HMAC-SHA256 key for the webhook signature (QUALMON_WEBHOOK_SECRET)."
    webhook_timeout_seconds: float = 5.0
    "One delivery attempt gives up after this (QUALMON_WEBHOOK_TIMEOUT_SECONDS)."
    memory_trim_seconds: float | None = 60.0
    "Return glibc's retained free memory to the OS this often (QUALMON_MEMORY_TRIM_SECONDS;"
    " 0: never). Without it RSS creeps up with every ended leg (see the README's soak)."
    rtp_ports: tuple[int, int] = (40000, 40999)
    "UDP ports for plain-RTP legs, first and last inclusive (QUALMON_RTP_PORTS `40000-40999`);"
    " one per attached leg, bound only while it lives."
    rtp_host: str = "127.0.0.1"
    "The address plain-RTP ports are bound on and that senders are told (QUALMON_RTP_HOST)."
    janus_url: str | None = None
    "Janus' HTTP API (QUALMON_JANUS_URL, e.g. http://janus:8088/janus); None: no Janus attach."
    janus_admin_key: str | None = field(default=None, repr=False)
    "The VideoRoom `admin_key`, sent with rtp_forward where `lock_rtp_forward` is on"
    " (QUALMON_JANUS_ADMIN_KEY)."
    janus_events_secret: str | None = field(default=None, repr=False)
    "Basic-auth password of Janus' event handler posts (QUALMON_JANUS_EVENTS_SECRET); None:"
    " the events endpoint refuses every post."
    drain_seconds: float = 600.0
    "A drain (SIGTERM, POST /v1/admin/drain) lets live legs run this long at most"
    " (QUALMON_DRAIN_SECONDS); then they end as `shutdown` and the process exits."
    internal_port: int | None = None
    "A second listening port for requests relayed by other instances (QUALMON_INTERNAL_PORT);"
    " `serve --workers` gives each worker one. None: only `port`."
    reuse_port: bool = False
    "Listen on `port` with SO_REUSEPORT (QUALMON_REUSE_PORT), so several workers share it."
    instance_id: str | None = None
    "This instance's name in the cluster (QUALMON_INSTANCE_ID); None: `host-pid`, resolved"
    " at start (`cluster.identity.instance_id_of`)."
    advertise_url: str | None = None
    "The http(s) base URL other instances reach this one at (QUALMON_ADVERTISE_URL); None:"
    " `http://host:port` (`cluster.identity.advertise_url_of`)."
    locale: str = DEFAULT_LOCALE
    "The therapist's language when no request says (QUALMON_LOCALE): the widget, reports and"
    " event streams without ?lang= or Accept-Language, and the webhook."


_ON = ("on", "1", "true")
_OFF = ("off", "0", "false")
_MAX_INT_DIGITS = 9
"Whole-number settings are counts and ports: nine digits is far beyond any of them."


def _check_number(label: str, value: float) -> None:
    """ConfigError unless `value` is finite and positive.

    `float("nan")` passes a `<= 0` check and `inf` would disable retention: both refused.
    """
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{label} must be a positive number, got {value!r}")


def _check_port(label: str, port: int) -> None:
    if not 0 <= port <= MAX_PORT:  # 0: any free port, as the demo and benches use
        raise ConfigError(f"{label} must be a port number 0..{MAX_PORT}, got {port!r}")


def _parse_number(raw: str, kind: type[int] | type[float]) -> float | None:
    """`raw` as an int or a finite float, None if it is not one written in ASCII.

    int() and float() also read "٣" as 3 and "1_0" as 10; settings are written in ASCII.
    """
    text = raw.strip()
    if kind is int:
        return parse_ascii_int(text, max_digits=_MAX_INT_DIGITS)
    return parse_ascii_float(text)


def _number(
    env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float
) -> float:
    """The setting `name` as a positive `kind` (an int stays an int), or `default` if unset."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = _parse_number(raw, kind)
    if value is None:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}")
    _check_number(name, value)
    return value


def _port(env: Mapping[str, str], name: str = "QUALMON_PORT") -> int | None:
    """The port in `name`, None if unset."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    port = parse_ascii_int(raw.strip(), max_digits=_MAX_INT_DIGITS)
    if port is None:
        raise ConfigError(f"{name}={raw!r} is not a valid int")
    _check_port(name, port)
    return port


def _internal_port(env: Mapping[str, str]) -> int | None:
    """QUALMON_INTERNAL_PORT: 1..65535 (0 would be a port nobody could be told about)."""
    port = _port(env, "QUALMON_INTERNAL_PORT")
    if port == 0:
        raise ConfigError("QUALMON_INTERNAL_PORT must be a port number 1..65535, got 0")
    return port


def _switch(env: Mapping[str, str], name: str) -> bool | None:
    """An on/off variable: None when unset; any word but on/off/1/0/true/false is an error."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return None
    if raw not in _ON + _OFF:
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw in _ON


def _janus_secret(env: Mapping[str, str], name: str) -> str | None:
    """A shared secret of the Janus integration: unset, or 16 or more printable ASCII
    characters (it travels in JSON and HTTP basic auth)."""
    raw = env.get(name, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isprintable()) or len(raw) < 16:
        raise ConfigError(f"{name} must be at least 16 printable ASCII characters")
    return raw


def _locale(env: Mapping[str, str]) -> str:
    """QUALMON_LOCALE: one of the locales with a catalog (`pt-BR` and `pt_br` name pt_BR)."""
    raw = env.get("QUALMON_LOCALE", "").strip()
    if not raw:
        return DEFAULT_LOCALE
    locale = exact_locale(raw)
    if locale is None:
        raise ConfigError(f"QUALMON_LOCALE must be one of {', '.join(LOCALES)}, got {raw[:40]!r}")
    return locale


def _check_overrides(overrides: Mapping[str, object]) -> None:
    """Flags get the checks their variables get (`--max-legs 0` is as wrong as the variable)."""
    port = overrides.get("port")
    if port is not None:
        if not isinstance(port, int):
            raise ConfigError(f"--port must be an integer, got {port!r}")
        _check_port("--port", port)
    labels = {"max_legs": "--max-legs", "retention_days": "", "webhook_timeout_seconds": ""}
    for name, label in labels.items():
        value = overrides.get(name)
        if value is not None:
            if not isinstance(value, int | float):
                raise ConfigError(f"{label or name} must be a number, got {value!r}")
            _check_number(label or name, value)


def check_webhook(url: str | None, secret: str | None, token_secret: str) -> None:
    """Raise ConfigError unless the webhook is off or fully and safely configured."""
    if url is None:
        if secret:
            raise ConfigError("QUALMON_WEBHOOK_SECRET is set but QUALMON_WEBHOOK_URL is not")
        return
    # Messages name the scheme or host only: the URL's query may carry the receiver's token.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises on garbage
    except ValueError as exc:
        raise ConfigError(f"QUALMON_WEBHOOK_URL is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"QUALMON_WEBHOOK_URL must start with http:// or https://, got scheme {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ConfigError("QUALMON_WEBHOOK_URL has no host")
    if not secret:
        raise ConfigError(
            "QUALMON_WEBHOOK_URL is set but QUALMON_WEBHOOK_SECRET is not: every webhook body "
            "is signed with it. Set it to a long random string shared with the receiver, e.g. "
            "QUALMON_WEBHOOK_SECRET=$(openssl rand -hex 32)"
        )
    if len(secret) < 32:
        raise ConfigError("QUALMON_WEBHOOK_SECRET is too short: use at least 32 random characters")
    if secret == token_secret:
        # The receiver holds the webhook key; with QUALMON_SECRET it could mint admin tokens.
        raise ConfigError("QUALMON_WEBHOOK_SECRET must differ from QUALMON_SECRET")


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read QUALMON_* variables; keyword overrides (from flags) win when not None."""
    env = os.environ if env is None else env
    port = _port(env)
    values: dict[str, object] = {
        "secret": env.get("QUALMON_SECRET", ""),
        "host": env.get("QUALMON_HOST") or "127.0.0.1",
        "port": 8080 if port is None else port,
        "max_legs": _number(env, "QUALMON_MAX_LEGS", int, 100),
        "db_path": env.get("QUALMON_DB") or "qualmon.db",
        "retention_days": _number(env, "QUALMON_RETENTION_DAYS", float, 30.0),
    }
    speech_enabled = _switch(env, "QUALMON_SPEECH")
    if speech_enabled is not None:
        values["speech_enabled"] = speech_enabled
    fast_rtp = _switch(env, "QUALMON_FAST_RTP")
    if fast_rtp is not None:
        values["fast_rtp"] = fast_rtp
    rules = DEFAULT_RULES
    if _switch(env, "QUALMON_TALK_BALANCE"):
        rules = tuple(replace(r, enabled=True) if r.kind == "talk_balance" else r for r in rules)
    rule_text = env.get("QUALMON_WARNING_RULES", "").strip()
    if rule_text:
        try:
            rules = override_rules(rules, rule_text)
        except ValueError as exc:
            raise ConfigError(f"QUALMON_WARNING_RULES: {exc}") from exc
    values["warning_rules"] = rules
    speech = SpeechParams()
    vad_mode = env.get("QUALMON_VAD_MODE")
    if vad_mode:
        if vad_mode not in ("0", "1", "2", "3"):
            raise ConfigError(f"QUALMON_VAD_MODE must be 0, 1, 2 or 3, got {vad_mode!r}")
        values["vad_mode"] = int(vad_mode)
    mic_silent = env.get("QUALMON_MIC_SILENT_SECONDS")
    if mic_silent:
        seconds = _number(env, "QUALMON_MIC_SILENT_SECONDS", float, 30.0)
        speech = replace(speech, mic_silent_after_seconds=seconds)
    values["speech"] = speech
    values["webhook_url"] = env.get("QUALMON_WEBHOOK_URL", "").strip() or None
    values["webhook_secret"] = env.get("QUALMON_WEBHOOK_SECRET") or None
    values["webhook_timeout_seconds"] = _number(env, "QUALMON_WEBHOOK_TIMEOUT_SECONDS", float, 5.0)
    if env.get("QUALMON_MEMORY_TRIM_SECONDS", "").strip() == "0":
        values["memory_trim_seconds"] = None
    else:
        values["memory_trim_seconds"] = _number(env, "QUALMON_MEMORY_TRIM_SECONDS", float, 60.0)
    addresses = env.get("QUALMON_ICE_ADDRESSES")
    if addresses:
        values["ice_addresses"] = ice_addresses(addresses, "QUALMON_ICE_ADDRESSES")
    if env.get("QUALMON_RTP_PORTS", "").strip():
        values["rtp_ports"] = rtp_ports(env["QUALMON_RTP_PORTS"], "QUALMON_RTP_PORTS")
    if env.get("QUALMON_RTP_HOST", "").strip():
        values["rtp_host"] = rtp_host(env["QUALMON_RTP_HOST"], "QUALMON_RTP_HOST")
    if env.get("QUALMON_JANUS_URL", "").strip():
        values["janus_url"] = janus_url(env["QUALMON_JANUS_URL"], "QUALMON_JANUS_URL")
    values["janus_admin_key"] = _janus_secret(env, "QUALMON_JANUS_ADMIN_KEY")
    values["janus_events_secret"] = _janus_secret(env, "QUALMON_JANUS_EVENTS_SECRET")
    values["drain_seconds"] = _number(env, "QUALMON_DRAIN_SECONDS", float, 600.0)
    values["internal_port"] = _internal_port(env)
    values["reuse_port"] = bool(_switch(env, "QUALMON_REUSE_PORT"))
    if env.get("QUALMON_INSTANCE_ID", "").strip():
        values["instance_id"] = instance_id(env["QUALMON_INSTANCE_ID"], "QUALMON_INSTANCE_ID")
    if env.get("QUALMON_ADVERTISE_URL", "").strip():
        values["advertise_url"] = advertise_url(
            env["QUALMON_ADVERTISE_URL"], "QUALMON_ADVERTISE_URL"
        )
    values["locale"] = _locale(env)
    _check_overrides(overrides)
    values.update({k: v for k, v in overrides.items() if v is not None})
    secret = values["secret"]
    if not isinstance(secret, str) or not secret:
        raise ConfigError(
            "QUALMON_SECRET is not set: qualmon signs and checks access tokens with it. "
            "Set it to a long random string, e.g. QUALMON_SECRET=$(openssl rand -hex 32)"
        )
    if len(secret) < 32:
        # HS256 wants a key of at least 32 bytes (RFC 7518 3.2); PyJWT warns below it.
        raise ConfigError("QUALMON_SECRET is too short: use at least 32 random characters")
    # Each value was checked above; in a dict of mixed types mypy sees only `object`.
    check_webhook(values["webhook_url"], values["webhook_secret"], secret)  # type: ignore[arg-type]
    return Settings(**values)  # type: ignore[arg-type]


def server_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The server flags shared by `serve` and `demo`, as settings_from_env overrides."""
    ice = None
    if args.ice_addresses:
        ice = ice_addresses(args.ice_addresses, "--ice-addresses")
    return {
        "host": args.host,
        "port": args.port,
        "max_legs": args.max_legs,
        "db_path": args.db_path,
        "ice_addresses": ice,
    }
