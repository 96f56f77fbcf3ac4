"""The therapist widget's page in the reader's language: its words, and the page filled in.

`static/widget.html` holds `{{name}}` slots; every word the page or its script shows comes
from the texts below, through the reader's catalog. The script's words travel as JSON in
the page, so no text is built in JavaScript.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from ..core.msgid import N_
from ..l10n.localizer import Localizer

PAGE_TEXTS: dict[str, str] = {
    "title": N_("Session connection"),
    "heading": N_("Connection"),
    "you": N_("You"),
    "client": N_("Client"),
    "your_connection": N_("Your connection:"),
    "client_connection": N_("The client's connection:"),
    "waiting": N_("Waiting…"),
    "urgent_notices": N_("Urgent connection notices"),
    "notices": N_("Current connection notices"),
    "calm": N_("No connection issues right now."),
    "balance": N_("Talk balance"),
    "balance_note": N_(
        "Share of talking: you (left) and the client (right), for information only."
    ),
    "connecting": N_("Connecting…"),
    "retry": N_("Reconnect now"),
}
"Words in the page itself, by slot."
SCRIPT_TEXTS: dict[str, str] = {
    "live": N_("Connected"),
    "connecting": N_("Connecting…"),
    "stalled": N_("Audio interrupted"),
    "ended": N_("Disconnected"),
    "probe_only": N_("Connected (app probe)"),
    "waiting": N_("Waiting…"),
    "live_status": N_("Live"),
    "connecting_status": N_("Connecting…"),
    "restarting": N_("Service restarting…"),
    "stale": N_("Not updated for a while — reconnecting…"),
    "balance": N_("Share of talking: you {you}, the client {client}"),
}
"Words the script shows, by key."
SEVERITY_TEXTS: dict[str, str] = {
    "info": N_("For information:"),
    "warning": N_("Notice:"),
    "critical": N_("Urgent:"),
}
"Said before each warning's text, so its weight is not carried by colour alone."
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def _template() -> str:
    return resources.files("qualmon.service").joinpath("static/widget.html").read_text("utf-8")


def _script_json(loc: Localizer) -> str:
    texts: dict[str, object] = {key: loc.gettext(text) for key, text in SCRIPT_TEXTS.items()}
    texts["severity"] = {key: loc.gettext(text) for key, text in SEVERITY_TEXTS.items()}
    # Inside <script>: "<" escaped, so no text can close the element.
    return json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c")


def render_widget(loc: Localizer, session_id: str) -> str:
    """The page for one session in `loc`'s language; every slot must be known (KeyError)."""
    values = {key: html.escape(loc.gettext(text), quote=True) for key, text in PAGE_TEXTS.items()}
    values["lang"] = html.escape(loc.tag, quote=True)
    values["session"] = html.escape(session_id, quote=True)
    values["script_texts"] = _script_json(loc)
    return _SLOT.sub(lambda slot: values[slot[1]], _template())
