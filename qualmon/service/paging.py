"""Pages of a list answer: `?limit=` and an opaque `?cursor=` (the last id of the page before).

A cursor is the last listed session id in base64url (no padding), so it survives any id in a
query string and needs no state on the server: the next page is "the ids after this one",
whichever instance answers and whatever ended or started meanwhile. Pure: no HTTP here.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
from collections.abc import Iterable

from ..core.ascii_digits import parse_ascii_int
from .auth import MAX_SESSION_ID_CHARS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_LIMIT_DIGITS = len(str(MAX_LIMIT))
_MAX_CURSOR_CHARS = (MAX_SESSION_ID_CHARS * 4 * 4 + 2) // 3
"The base64 length of the longest id: 128 characters of up to 4 UTF-8 bytes each."
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")


class PageError(ValueError):
    """A `limit` or `cursor` the API refuses (the message is the one-line 400 reason)."""


def parse_limit(raw: str | None) -> int:
    """`?limit=`: 1..MAX_LIMIT in ASCII digits; DEFAULT_LIMIT when absent or empty."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    limit = parse_ascii_int(raw, max_digits=_LIMIT_DIGITS)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise PageError(f"limit must be an integer 1..{MAX_LIMIT}")
    return limit


def encode_cursor(last_id: str) -> str:
    # surrogatepass: an id comes from a token's JSON, which may hold a lone surrogate.
    raw = last_id.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(raw: str | None) -> str | None:
    """The id a `?cursor=` names, None when absent or empty; PageError for anything this API
    did not give out (bad alphabet, not UTF-8, not an id, not written as encode_cursor does)."""
    if raw is None or raw == "":
        return None
    refused = PageError("cursor is not one this API gave out (use `next` of the previous page)")
    if len(raw) > _MAX_CURSOR_CHARS or not _CURSOR.fullmatch(raw):
        raise refused
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode(
            "utf-8", "surrogatepass"
        )
    except (binascii.Error, ValueError):
        raise refused from None
    # The round trip refuses a second spelling of one id (stray low bits in the last char).
    if not 0 < len(text) <= MAX_SESSION_ID_CHARS or encode_cursor(text) != raw:
        raise refused
    return text


def first_after(ids: Iterable[str], *, after: str | None, limit: int) -> tuple[list[str], bool]:
    """The `limit` smallest ids greater than `after` (all of them if None), sorted, and
    whether any id is left after them. O(n log limit): the whole list is never sorted."""
    candidates = ids if after is None else (i for i in ids if i > after)
    smallest = heapq.nsmallest(limit + 1, candidates)
    return smallest[:limit], len(smallest) > limit


def next_cursor(page_ids: list[str], more: bool) -> str | None:
    """`next` of a page: the cursor after its last id, None on the last page."""
    return encode_cursor(page_ids[-1]) if more and page_ids else None
