"""N_(): marks English text as a message id, so `pybabel extract` finds it."""

from __future__ import annotations


def N_(message: str) -> str:
    """The message itself: translated later, where it is shown (qualmon.l10n)."""
    return message
