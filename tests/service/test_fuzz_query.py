"""Query parameters and path ids of the read endpoints: the answer or a one-line 400/404,
never a 5xx; parameters an endpoint does not know change nothing."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from yarl import URL

from qualmon.service.paging import encode_cursor

from ..conftest import Service, make_settings
from ..fuzzing import examples, fuzz_service, nasty_text, numbers, one_line_refusal

pytestmark = pytest.mark.fuzz

INSTANTS = st.one_of(
    st.sampled_from(
        [
            "2026-11-25",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.123+05:30",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "2026-02-30",
            "2026-11-25T24:00",
            "２０２６-11-25",
            "2026-١١-25",
            "",
            " ",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    nasty_text(max_size=30),
)
UNKNOWN_PARAMS = st.dictionaries(
    st.one_of(st.sampled_from(["format", "page", "callback", "token2", "locale"]), nasty_text()),
    # Cut short: a 5000-digit value would pass aiohttp's 8190-byte request-line limit.
    st.one_of(nasty_text(), numbers()).map(lambda value: value[:300]),
    max_size=3,
)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    async with fuzz_service(make_settings()) as running:
        yield running


async def get(service: Service, path: str, params: dict[str, str], token: str) -> tuple[int, str]:
    url = URL(service.url + path, encoded=True).update_query(params)
    headers = {"Authorization": "Bearer " + token}
    async with service.http.get(url, headers=headers) as r:
        return r.status, await r.text()


def without(params: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in names}


@examples(60)
@given(
    limit=st.one_of(st.none(), numbers(), nasty_text()),
    since=st.one_of(st.none(), INSTANTS),
    until=st.one_of(st.none(), INSTANTS),
    unknown=UNKNOWN_PARAMS,
)
async def test_list_reports_answers_or_refuses_its_parameters(
    service: Service, limit: str | None, since: str | None, until: str | None, unknown: Any
) -> None:
    """?limit= (huge, negative, "٣", text), ?since=/?until= (dates, non-dates, foreign digits)
    and unknown parameters: 200 with a list or a one-line 400."""
    params = without(unknown, "limit", "since", "until", "token", "lang")
    for name, value in (("limit", limit), ("since", since), ("until", until)):
        if value is not None:
            params[name] = value
    status, text = await get(service, "/v1/reports", params, service.token("admin"))
    event(f"status {status}")
    assert status == 200 or (status == 400 and one_line_refusal(status, text)), (status, text)


@examples(60)
@given(
    limit=st.one_of(st.none(), numbers(), nasty_text()),
    cursor=st.one_of(
        st.none(),
        nasty_text(max_size=40),
        nasty_text(max_size=40).filter(bool).map(encode_cursor),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="),
    ),
    scope=st.one_of(st.none(), st.sampled_from(["local", "cluster"]), nasty_text()),
    unknown=UNKNOWN_PARAMS,
)
async def test_list_sessions_answers_or_refuses_its_parameters(
    service: Service, limit: str | None, cursor: str | None, scope: str | None, unknown: Any
) -> None:
    """?limit=, ?cursor= (real ones, base64 noise, any text) and ?scope=: 200 with a page and
    its `next`, or a one-line 400."""
    params = without(unknown, "limit", "cursor", "scope", "token")
    for name, value in (("limit", limit), ("cursor", cursor), ("scope", scope)):
        if value is not None:
            params[name] = value
    status, text = await get(service, "/v1/sessions", params, service.token("admin"))
    event(f"status {status}")
    assert status == 200 or (status == 400 and one_line_refusal(status, text)), (status, text)
    if status == 200:
        assert '"next":' in text.replace(" ", "")


@examples(60)
@given(session=nasty_text(max_size=40), unknown=UNKNOWN_PARAMS, admin=st.booleans())
async def test_widget_takes_any_session_parameter(
    service: Service, session: str, unknown: Any, admin: bool
) -> None:
    """?session= with an admin token is escaped into the page whatever it holds (empty: a
    one-line 400); a watch token's own session wins; unknown parameters change nothing."""
    params = {**without(unknown, "session", "token", "lang"), "session": session}
    token = service.token("admin") if admin else service.token("watch", "w1")
    status, text = await get(service, "/widget", params, token)
    if admin and not session:
        assert status == 400 and one_line_refusal(status, text), (status, text)
        return
    assert status == 200, (status, text)
    shown = session if admin else "w1"
    assert f'<body data-session="{html.escape(shown, quote=True)}">' in text


@examples(60)
@given(
    session=nasty_text(max_size=40),
    endpoint=st.sampled_from(["", "/report", "/report.html", "/events", "/ws"]),
    unknown=UNKNOWN_PARAMS,
)
async def test_session_paths_take_any_id(
    service: Service, session: str, endpoint: str, unknown: Any
) -> None:
    """Any session id in the path (percent-encoded), with a watch token for that very id or an
    admin token: 404 for a session that does not exist, never a 5xx."""
    path = f"/v1/sessions/{quote(session, safe='')}{endpoint}"
    params = without(unknown, "token", "lang")
    for token in (service.token("admin"), service.token("watch", session or "x")):
        status, text = await get(service, path, params, token)
        event(f"status {status}")
        assert status < 500, (status, text)
        assert one_line_refusal(status, text), (status, text)


LANGS = st.one_of(
    st.sampled_from(
        ["de", "pt-BR", "pt_br", "PT", "de-AT", "ja", "zh-Hant-TW", "x", "", "e\u0301n"]
    ),
    nasty_text(max_size=40),
)


@examples(60)
@given(lang=LANGS, accept=st.one_of(st.none(), nasty_text(max_size=60), LANGS))
async def test_widget_takes_any_lang(service: Service, lang: str, accept: str | None) -> None:
    """?lang= (tags, foreign scripts, garbage) and any Accept-Language: the page in one of
    the catalogs' languages, or a one-line 400 when lang is no language tag; never a 5xx."""
    url = URL(service.url + "/widget", encoded=True).update_query({"lang": lang})
    headers = {"Authorization": "Bearer " + service.token("watch", "w1")}
    if accept is not None:
        # What a client can send: no control characters (aiohttp refuses them), bytes as
        # latin-1 (how a server reads a header that is not ASCII).
        printable = "".join(c for c in accept if c.isprintable())
        headers["Accept-Language"] = printable.encode("utf-8").decode("latin-1")
    async with service.http.get(url, headers=headers) as r:
        status, text = r.status, await r.text()
        language = r.headers.get("Content-Language")
    event(f"status {status}")
    if status == 400:
        assert one_line_refusal(status, text) and "lang" in text, (status, text)
        return
    assert status == 200, (status, text)
    assert language in ("en", "de", "fr", "es", "pt-BR", "nl"), language
    assert f'<html lang="{language}">' in text
