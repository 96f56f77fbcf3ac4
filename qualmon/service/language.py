"""The reader's language at the service's edge: which catalog a request gets, and the
therapist's language for outputs no request carries (the webhook)."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from ..l10n.locales import accept_language, is_language_tag, negotiate
from ..l10n.localizer import Localizer
from .auth import token_claims
from .keys import catalogs_key, settings_key, therapist_locales_key

LANG_PARAMETER = "lang"


def request_localizer(request: web.Request) -> Localizer:
    """`?lang=`, else the token's `locale` claim, else Accept-Language, else QUALMON_LOCALE;
    each wish counts only if a catalog speaks it. A `lang` that is no language tag is a 400.

    The claim comes before Accept-Language: the platform that minted the token knows the
    therapist's language setting, the browser's header only its installation.
    """
    lang = request.query.get(LANG_PARAMETER) or None
    if lang is not None and not is_language_tag(lang):
        raise web.HTTPBadRequest(text="lang must be a language tag such as de or pt-BR\n")
    claims = token_claims(request, request.app[settings_key].secret)
    header = request.headers.get("Accept-Language", "")
    catalogs = request.app[catalogs_key]
    locale = negotiate(
        [lang, claims.locale if claims else None, *accept_language(header)],
        default=request.app[settings_key].locale,
        available=catalogs.locales,
    )
    return catalogs.get(locale)


def language_headers(loc: Localizer) -> dict[str, str]:
    """What an answer in `loc`'s language says about it; `Vary`, since the same URL answers
    differently for another Accept-Language."""
    return {"Content-Language": loc.tag, "Vary": "Accept-Language"}


def default_localizer(app: web.Application) -> Localizer:
    """QUALMON_LOCALE's catalog."""
    return app[catalogs_key].get(app[settings_key].locale)


@web.middleware
async def remember_therapist_locale(request: web.Request, handler: Any) -> web.StreamResponse:
    """After a therapist's publish request succeeded here (a WHIP offer, a probe sample, an
    attach), remember the `locale` its token carries for that session."""
    response = cast(web.StreamResponse, await handler(request))
    if request.method == "POST" and response.status < 300:
        claims = token_claims(request, request.app[settings_key].secret)
        if (
            claims is not None
            and claims.scope == "publish"
            and claims.role == "therapist"
            and claims.session is not None
            and claims.locale is not None
        ):
            request.app[therapist_locales_key].remember(claims.session, claims.locale)
    return response
