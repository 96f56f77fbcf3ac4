"""The reader's language through the real service: event streams, session JSON, reports,
the widget page and the webhook, with warnings raised for real from probe samples (no
media peers: a therapist's probe that hears 5 % concealment raises audible_concealment)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qualmon.core.warning_texts import therapist_message
from qualmon.l10n.catalogs import load_localizer
from qualmon.service.auth import issue_token
from qualmon.service.keys import limiter_key, store_key, therapist_locales_key

from ..conftest import SECRET, Service, make_settings, run_service, wait_for
from ..reportdata import checkpoint
from .test_events import read_sse
from .test_probe_ingest import post, sample
from .test_webhook import WEBHOOK_SECRET, Receiver, receiver  # noqa: F401 - the fixture

CONCEALMENT = therapist_message("audible_concealment", "therapist", cleared=False)


def german(message: str) -> str:
    return load_localizer("de").gettext(message)


def french(message: str) -> str:
    return load_localizer("fr").gettext(message)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    """QUALMON_LOCALE=nl, the probe rate limit off (samples back to back), a stored report."""
    settings = make_settings(locale="nl")
    async with run_service(settings) as running:
        running.app[limiter_key].min_interval_seconds = 0.0
        yield running


def token(scope: str, session: str | None = None, role: str | None = None, **claims: Any) -> str:
    return issue_token(SECRET, scope=scope, session=session, role=role, **claims)


async def raise_concealment(service: Service, session: str, publish_token: str) -> None:
    """Three probe samples with 5 % audible concealment from the therapist's browser."""
    for i in range(3):
        status, text, _ = await post(
            service, session, sample(i, audible_per_interval=4800), token=publish_token
        )
        assert status == 204, text


def raised(events: list[tuple[str, dict[str, Any], float]]) -> dict[str, Any] | None:
    return next((d for e, d, _ in events if e == "raised"), None)


async def test_streams_speak_the_readers_language(service: Service) -> None:
    """SSE with ?lang=de and a WebSocket with Accept-Language: fr get the same warning, each
    in its reader's language with `locale` set; the SRE text stays English; a stream with
    no wish speaks QUALMON_LOCALE (nl)."""
    await raise_concealment(service, "s1", token("publish", "s1", "therapist"))
    watch = token("watch", "s1")
    url = f"{service.url}/v1/sessions/s1/events"
    de_events: list[tuple[str, dict[str, Any], float]] = []
    nl_events: list[tuple[str, dict[str, Any], float]] = []
    async with (
        service.http.get(url, params={"token": watch, "lang": "de-AT"}) as de_stream,
        service.http.get(url, params={"token": watch}) as nl_stream,
        service.http.ws_connect(
            f"{service.url}/v1/sessions/s1/ws",
            headers={"Authorization": f"Bearer {watch}", "Accept-Language": "ja, fr;q=0.8"},
        ) as socket,
    ):
        assert de_stream.headers["Content-Language"] == "de"
        assert nl_stream.headers["Content-Language"] == "nl"
        readers = [
            asyncio.create_task(read_sse(de_stream, de_events)),
            asyncio.create_task(read_sse(nl_stream, nl_events)),
        ]
        try:
            de = await wait_for(lambda: raised(de_events), timeout=10.0, what="raised (de)")
            nl = await wait_for(lambda: raised(nl_events), timeout=10.0, what="raised (nl)")
            fr = None
            while fr is None:
                message = await socket.receive_json(timeout=10.0)
                if message["event"] == "raised":
                    fr = message["data"]
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    assert (de["locale"], de["therapist_text"]) == ("de", german(CONCEALMENT))
    assert de["therapist_text"].startswith("Bei Ihnen gehen Teile")
    assert (fr["locale"], fr["therapist_text"]) == ("fr", french(CONCEALMENT))
    assert (nl["locale"], nl["therapist_text"]) == ("nl", load_localizer("nl").gettext(CONCEALMENT))
    assert de["sre_text"] == fr["sre_text"] == nl["sre_text"]
    assert de["sre_text"].startswith("therapist hears 5.0% concealed audio")


async def test_session_json_and_the_order_of_wishes(service: Service) -> None:
    """?lang= beats the token's `locale` claim, which beats Accept-Language, which beats
    QUALMON_LOCALE; a wish no catalog speaks passes to the next."""
    await raise_concealment(service, "s2", token("publish", "s2", "therapist"))

    async def text(params: dict[str, str], headers: dict[str, str]) -> tuple[str, str]:
        async with service.http.get(
            f"{service.url}/v1/sessions/s2", params=params, headers=headers
        ) as r:
            assert r.status == 200, await r.text()
            doc = await r.json()
        if not doc["warnings"]:
            return "", ""
        (warning,) = doc["warnings"]
        assert r.headers["Content-Language"] == warning["locale"]
        return warning["locale"], warning["therapist_text"]

    plain = {"Authorization": "Bearer " + token("watch", "s2")}
    claimed = {"Authorization": "Bearer " + token("watch", "s2", locale="pt-BR")}

    async def listed() -> bool:
        return bool((await text({}, plain))[0])

    await wait_for(listed, timeout=10.0, what="the warning listed")
    assert (await text({}, plain))[0] == "nl"
    assert (await text({}, {**plain, "Accept-Language": "es-MX,es;q=0.9"}))[0] == "es"
    assert (await text({}, {**claimed, "Accept-Language": "es"}))[0] == "pt-BR"
    assert (await text({"lang": "fr"}, claimed))[0] == "fr"
    assert (await text({"lang": "ja"}, claimed))[0] == "pt-BR"
    assert (await text({"lang": "en"}, claimed)) == ("en", CONCEALMENT)


@pytest.mark.parametrize(
    "path", ["/widget", "/v1/sessions/s3/events", "/v1/sessions/s3", "/v1/sessions/s3/report.html"]
)
async def test_a_lang_that_is_no_tag_is_a_400(service: Service, path: str) -> None:
    await raise_concealment(service, "s3", token("publish", "s3", "therapist"))
    async with service.http.get(
        service.url + path, params={"token": token("watch", "s3"), "lang": "<de>"}
    ) as r:
        assert r.status == 400
        assert await r.text() == "lang must be a language tag such as de or pt-BR\n"


async def test_a_locale_claim_that_is_no_tag_makes_the_token_invalid(service: Service) -> None:
    import jwt

    bad = jwt.encode(
        {"scope": "watch", "session": "s4", "exp": 4_000_000_000, "locale": ["de"]},
        SECRET,
        algorithm="HS256",
    )
    async with service.http.get(f"{service.url}/widget", params={"token": bad}) as r:
        assert r.status == 401
        assert "locale" in await r.text()


async def test_the_report_in_the_readers_language(service: Service) -> None:
    """report.html?lang=es: lang="es" and Spanish headings; the JSON's summary in German
    for Accept-Language: de; both say which in Content-Language."""
    await service.app[store_key].run(
        lambda s: s.save(checkpoint("r1", ended_at=1_790_000_060.0, end_reason="ended"))
    )
    watch = token("watch", "r1")
    async with service.http.get(
        f"{service.url}/v1/sessions/r1/report.html", params={"token": watch, "lang": "es"}
    ) as r:
        assert r.status == 200 and r.headers["Content-Language"] == "es"
        assert r.headers["Vary"] == "Accept-Language"
        page = await r.text()
    assert page.startswith('<!DOCTYPE html><html lang="es">')
    for heading in ("Resumen", "Cronología", "Conversación", "Avisos"):
        assert f"<h2>{heading}</h2>" in page
    async with service.http.get(
        f"{service.url}/v1/sessions/r1/report",
        params={"token": watch},
        headers={"Accept-Language": "de"},
    ) as r:
        assert r.status == 200 and r.headers["Content-Language"] == "de"
        doc = await r.json()
    assert doc["summary"].startswith("Sitzung von 60 Sekunden; sie wurde regulär beendet.")
    assert "Gesprächsanteil Klient:in 41\u00a0%" in doc["summary"]


async def test_the_webhook_speaks_the_therapists_language(receiver: Receiver) -> None:  # noqa: F811
    """The therapist's publish token says `locale: fr`: that session's webhook events are
    French; another session's, whose token says nothing, speak QUALMON_LOCALE (de)."""
    settings = make_settings(locale="de", webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    async with run_service(settings) as service:
        service.app[limiter_key].min_interval_seconds = 0.0
        await raise_concealment(service, "h1", token("publish", "h1", "therapist", locale="fr"))
        await raise_concealment(service, "h2", token("publish", "h2", "therapist"))

        def posted() -> dict[str, dict[str, Any]]:
            docs = [r.doc for r in receiver.requests if r.doc["event"] == "raised"]
            return {d["session_id"]: d["warning"] for d in docs}

        warnings = await wait_for(
            lambda: len(posted()) == 2 and posted(),
            timeout=15.0,
            what="both sessions' warnings posted",
        )
        assert service.app[therapist_locales_key].localizer_for("h1").locale == "fr"
    assert (warnings["h1"]["locale"], warnings["h1"]["therapist_text"]) == (
        "fr",
        french(CONCEALMENT),
    )
    assert (warnings["h2"]["locale"], warnings["h2"]["therapist_text"]) == (
        "de",
        german(CONCEALMENT),
    )
