"""Settings given as text (environment, flags): checked and normalised, or a ConfigError that
names the setting and says what it must be."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from ..core.ascii_digits import parse_ascii_int
from .errors import ConfigError

MAX_PORT = 65535


def ice_addresses(raw: str, label: str) -> tuple[str, ...]:
    """Comma-separated host-candidate addresses as IP literals; ConfigError for anything else
    (aioice would try to bind a name, so it is refused here rather than when the app runs)."""
    addresses = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ConfigError(f"{label}: {item[:40]!r} is not an IP address") from None
    return tuple(addresses)


def rtp_ports(raw: str, label: str) -> tuple[int, int]:
    """`first-last` (inclusive, 1..65535, first <= last) in ASCII digits; ConfigError else."""
    first_text, dash, last_text = raw.strip().partition("-")
    first = parse_ascii_int(first_text.strip(), max_digits=5)
    last = parse_ascii_int(last_text.strip(), max_digits=5)
    if not dash or first is None or last is None:
        raise ConfigError(f"{label} must be a port range like 40000-40999, got {raw[:40]!r}")
    if not 1 <= first <= last <= MAX_PORT:
        raise ConfigError(f"{label} must be ports 1..{MAX_PORT} with first <= last, got {raw!r}")
    return first, last


def rtp_host(raw: str, label: str) -> str:
    """One IP literal that senders can send to: a name would be resolved on every bind, and
    0.0.0.0 or :: is no address to give a sender (plain RTP has no candidates to say more)."""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        raise ConfigError(f"{label}: {raw[:40]!r} is not an IP address") from None
    if address.is_unspecified:
        raise ConfigError(f"{label} must be an address senders can reach, not {address}")
    return str(address)


def janus_url(raw: str, label: str) -> str:
    """An http(s) URL with a host: the Janus HTTP API's base (its `/janus` path included)."""
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - parsing the port is what raises on garbage
    except ValueError as exc:
        raise ConfigError(f"{label} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{label} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(f"{label} must have no query or fragment (it is a base path)")
    return raw.strip().rstrip("/")


_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
"ASCII only: the id travels in a header (`Qualmon-Relayed`), a metric-free log line and SQL."


def instance_id(raw: str, label: str) -> str:
    """1–64 ASCII letters, digits, `.`, `-`, `_`; ConfigError else."""
    text = raw.strip()
    if _INSTANCE_ID.fullmatch(text) is None:
        raise ConfigError(
            f"{label} must be 1-64 ASCII letters, digits, '.', '-' or '_', got {raw[:70]!r}"
        )
    return text


def advertise_url(raw: str, label: str) -> str:
    """An http(s) base URL with a host and no path, query or fragment (relayed requests
    append their own path); returned without a trailing slash."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is what raises on garbage
    except ValueError as exc:
        raise ConfigError(f"{label} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{label} must be an http:// or https:// URL with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{label} must be a base URL: no path, query, fragment or user")
    return text.rstrip("/")
