"""validate_offer against real browser offers, mutated: an offer or an OfferError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiortc.sdp import SessionDescription
from hypothesis import given

from qualmon.media.offer import OfferError, ValidatedOffer, validate_offer

from ..fuzzing import examples, mutated_text
from .test_offer import AIORTC_OFFER

pytestmark = pytest.mark.fuzz

OFFERS_DIR = Path(__file__).parent / "offers"


def _read(name: str) -> str:
    with open(OFFERS_DIR / name, encoding="utf-8", newline="") as f:
        return f.read()


BROWSER_OFFERS = {
    "chrome_audio": _read("chrome_audio.sdp"),
    "chrome_av": _read("chrome_av.sdp"),
    "firefox": _read("firefox.sdp"),
}
"""Offers as browsers send them to a WHIP endpoint: Chrome audio only (mDNS, srflx and TCP
candidates, RED, DTX), Chrome camera + microphone + data channel before trickle (every video
codec Chrome offers, RTX, FEC, 13 extmaps, ssrc-group), Firefox (session-level fingerprint
and direction, component-2 and TCP candidates, extmap directions, braced msids)."""
OFFERS = (*BROWSER_OFFERS.values(), AIORTC_OFFER)


@pytest.mark.parametrize("name", sorted(BROWSER_OFFERS))
def test_browser_offers_are_valid(name: str) -> None:
    """The fuzz bases themselves are accepted, and aiortc parses what is handed to it."""
    result = validate_offer(BROWSER_OFFERS[name])
    assert result.audio_payload_clock_rates[0] == 8000
    parsed = SessionDescription.parse(result.sdp)
    assert parsed.media[0].kind == "audio"


@examples()
@given(offer=mutated_text(OFFERS))
def test_a_mutated_offer_is_validated_or_refused_in_one_line(offer: str) -> None:
    """Inserted Unicode digits, NUL, lone CR/LF, line separators, huge numbers, repeated,
    dropped, swapped and truncated lines: validate_offer returns an offer aiortc can parse or
    raises OfferError with a one-line reason, never anything else."""
    try:
        result = validate_offer(offer)
    except OfferError as exc:
        assert len(exc.reason.splitlines()) == 1, exc.reason
        return
    assert isinstance(result, ValidatedOffer)
    SessionDescription.parse(result.sdp)
