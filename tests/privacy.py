"""What must never reach the store or the logs: SDP, candidates, addresses, tokens."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

SDP_MARKERS = (b"v=0", b"a=candidate", b"a=fingerprint", b"a=ice-pwd")
IPV4 = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")


def leaks(blob: bytes, tokens: Iterable[str], *, own_urls: Iterable[str] = ()) -> list[str]:
    """Every forbidden thing found in `blob`, described (empty: clean).

    `own_urls`: the instances' advertised base URLs (`QUALMON_ADVERTISE_URL`, by default
    `http://host:port`), which the cluster's `instances` table holds by design: the
    operator's own addresses, like the listening address in the start-up line, not a
    participant's."""
    for url in own_urls:
        blob = blob.replace(url.encode(), b"")
    found = [marker.decode() for marker in SDP_MARKERS if marker in blob]
    found += [f"IPv4 {m.decode()}" for m in IPV4.findall(blob)]
    for token in tokens:
        # The signature alone would identify the token too.
        if token.encode() in blob or token.rsplit(".", 1)[-1].encode() in blob:
            found.append("a token")
    return found


def store_bytes(db_path: Path) -> bytes:
    """The database and whatever WAL/SHM files lie next to it."""
    parts = [
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
    ]
    return b"".join(p.read_bytes() for p in parts if p.exists())
