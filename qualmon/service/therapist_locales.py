"""The locale each session's therapist asked for, for outputs that no request carries."""

from __future__ import annotations

from collections import OrderedDict

from ..l10n.catalogs import Catalogs
from ..l10n.locales import negotiate
from ..l10n.localizer import Localizer

REMEMBERED_SESSIONS = 10_000
"Sessions whose therapist's locale is remembered: the oldest is forgotten past this."


class TherapistLocales:
    """The locale each session's therapist asked for in their publish token's `locale`
    claim, newest sessions kept (a bounded map: sessions end without telling it)."""

    def __init__(self, catalogs: Catalogs, default: str, limit: int = REMEMBERED_SESSIONS):
        self._catalogs = catalogs
        self._default = default
        self._limit = limit
        self._by_session: OrderedDict[str, str] = OrderedDict()

    def remember(self, session_id: str, tag: str) -> None:
        self._by_session[session_id] = tag
        self._by_session.move_to_end(session_id)
        while len(self._by_session) > self._limit:
            self._by_session.popitem(last=False)

    def localizer_for(self, session_id: str) -> Localizer:
        """The therapist's catalog for this session, else QUALMON_LOCALE's."""
        wish = self._by_session.get(session_id)
        locale = negotiate([wish], default=self._default, available=self._catalogs.locales)
        return self._catalogs.get(locale)
