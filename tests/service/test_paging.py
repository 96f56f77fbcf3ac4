"""Pages of the session list: limit and cursor parsing, the page of ids, the cluster's merge."""

from __future__ import annotations

from typing import Any

import pytest

from qualmon.service.fanout import Part, merge_pages
from qualmon.service.paging import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PageError,
    decode_cursor,
    encode_cursor,
    first_after,
    next_cursor,
    parse_limit,
)


def test_limit_defaults_and_bounds() -> None:
    assert parse_limit(None) == DEFAULT_LIMIT
    assert parse_limit("") == DEFAULT_LIMIT
    assert parse_limit("1") == 1
    assert parse_limit(str(MAX_LIMIT)) == MAX_LIMIT


@pytest.mark.parametrize("raw", ["0", str(MAX_LIMIT + 1), "-1", "+5", " 5", "5.0", "٣", "²", "x"])
def test_limit_refused(raw: str) -> None:
    """Out of range, signs, spaces, decimals and foreign digits: one clear reason."""
    with pytest.raises(PageError, match=f"limit must be an integer 1..{MAX_LIMIT}"):
        parse_limit(raw)


@pytest.mark.parametrize(
    "session_id", ["a", "bench-17", "ü ß/?&=#", "x" * 128, "\ud800", "🎉" * 128]
)
def test_cursor_round_trip(session_id: str) -> None:
    cursor = encode_cursor(session_id)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor) == session_id


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "raw",
    [
        "YQ=",  # padding: the API never writes it
        "Y",  # not a whole byte
        "YR",  # "a" with stray low bits: a second spelling of one id
        "a+b/",  # standard base64, not base64url
        "%00",
        "//8",  # not UTF-8
        encode_cursor("x" * 129),  # longer than any session id
        "A" * 5000,
        "٣",
    ],
)
def test_cursor_refused(raw: str) -> None:
    with pytest.raises(PageError, match="cursor is not one this API gave out"):
        decode_cursor(raw)


def test_first_after_pages_through_every_id_once() -> None:
    ids = [f"s{i:03}" for i in range(57)][::-1]  # any order in, sorted out
    seen: list[str] = []
    after = None
    while True:
        page, more = first_after(ids, after=after, limit=10)
        seen += page
        if not more:
            break
        after = page[-1]
    assert seen == sorted(ids)


def test_first_after_says_whether_more_are_left() -> None:
    assert first_after(["a", "b"], after=None, limit=2) == (["a", "b"], False)
    assert first_after(["a", "b", "c"], after=None, limit=2) == (["a", "b"], True)
    assert first_after(["a", "b", "c"], after="b", limit=2) == (["c"], False)
    assert first_after([], after="zz", limit=5) == ([], False)
    assert next_cursor(["a", "b"], True) == encode_cursor("b")
    assert next_cursor(["a", "b"], False) is None


def entry(session_id: str, state: str = "live", ended_at: str | None = None) -> dict[str, Any]:
    return {"id": session_id, "state": state, "ended_at": ended_at}


def test_merge_cuts_the_union_to_the_limit() -> None:
    """Each instance's page is its own smallest ids; the merged page is the union's."""
    a = Part([entry("a1"), entry("a2"), entry("a3")], more=True)
    b = Part([entry("b1")], more=False)
    c = Part([entry("a0"), entry("c9")], more=False)
    page, cursor = merge_pages([a, b, c], after=None, limit=3)
    assert [d["id"] for d in page] == ["a0", "a1", "a2"]
    assert cursor == encode_cursor("a2")


def test_merge_ends_when_no_instance_has_more() -> None:
    page, cursor = merge_pages(
        [Part([entry("a")], more=False), Part([entry("b")], more=False)], after=None, limit=2
    )
    assert [d["id"] for d in page] == ["a", "b"] and cursor is None


def test_merge_goes_on_while_an_instance_has_more() -> None:
    """A full page of one instance may hide more ids than the merged page shows."""
    page, cursor = merge_pages([Part([entry("a"), entry("b")], more=True)], after=None, limit=2)
    assert [d["id"] for d in page] == ["a", "b"] and cursor == encode_cursor("b")


def test_merge_keeps_one_entry_per_session_the_live_one() -> None:
    """Ended on a dead owner's successor, live on the new owner: listed once, live."""
    ended = entry("s", "ended", "2026-11-30T10:00:00Z")
    page, cursor = merge_pages(
        [Part([ended], more=False), Part([entry("s")], more=False)], after=None, limit=10
    )
    assert page == [entry("s")] and cursor is None


def test_merge_drops_what_an_older_instance_sent_before_the_cursor() -> None:
    """An instance of a release before paging sends its whole list and no `next`."""
    old = Part([entry("a"), entry("b"), entry("c"), entry("d")], more=False)
    page, cursor = merge_pages([Part([], more=False), old], after="a", limit=2)
    assert [d["id"] for d in page] == ["b", "c"] and cursor == encode_cursor("c")
