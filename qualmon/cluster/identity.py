"""This instance's name and address in the cluster, resolved once at start from Settings."""

from __future__ import annotations

import os
import re
import socket

from ..config import Settings


def instance_id_of(settings: Settings) -> str:
    """The configured id, or `host-pid` (host name cut to fit, odd characters replaced)."""
    if settings.instance_id is not None:
        return settings.instance_id
    suffix = f"-{os.getpid()}"
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "qualmon"
    return host[: 64 - len(suffix)] + suffix


def advertise_url_of(settings: Settings) -> str:
    """The configured base URL, or `http://host:port` (the internal port if there is one; a
    wildcard host becomes loopback: only instances on this machine can use that default)."""
    if settings.advertise_url is not None:
        return settings.advertise_url
    host = settings.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    # `serve --workers` workers share `port`: others reach one of them on its own port.
    port = settings.internal_port if settings.internal_port is not None else settings.port
    return f"http://{host}:{port}"
