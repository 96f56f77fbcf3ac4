"""How long the probe holds its posts after the service answers 429."""

from __future__ import annotations

import pytest

from qualmon.probe.probe import wait_after_429


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("5", 5.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("", 1.0),  # no header
        ("soon", 1.0),
        ("1.5", 1.0),
        ("-3", 1.0),
        ("²", 1.0),  # isdigit() says yes; float() used to raise here
        ("٣", 1.0),  # float() would read 3
        ("9" * 400, 1.0),  # float() would read inf: no post ever again
    ],
)
def test_wait_after_429(retry_after: str, seconds: float) -> None:
    assert wait_after_429(retry_after) == seconds
