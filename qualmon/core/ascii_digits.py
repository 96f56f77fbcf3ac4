"""Numbers written in ASCII digits: the one check for digits that arrive as text from outside.

Protocols (SDP, HTTP headers), query strings, file names and settings mean 0-9. Python's own
checks take more: `str.isdigit()` accepts "²" (which `int()` refuses: a crash where a refusal
was meant), `str.isdecimal()` and regex `\\d` accept "٣" or "９" (which `int()` reads as 3
and 9: a value the sender's own tools would not see). Check with this module instead, and
write `[0-9]`, not `\\d`, in patterns.
"""

from __future__ import annotations

import math
import re

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"A decimal number in ASCII: what float() reads, less inf, nan, underscores and other scripts."


def is_ascii_digits(text: str) -> bool:
    """True when `text` is one or more of 0-9 and nothing else: no sign, space or underscore."""
    # The only ASCII characters str.isdigit() accepts are 0-9.
    return text.isascii() and text.isdigit()


def parse_ascii_int(text: str, *, max_digits: int) -> int | None:
    """The value of `text` if it is 1..`max_digits` ASCII digits, else None.

    The cap is the caller's largest meaningful value written out (5 for a port, 3 for an RTP
    payload type). It also keeps `int()` below its 4300-digit limit, where it raises
    ValueError, and a later `float()` below its overflow.
    """
    if max_digits < 1:
        raise ValueError(f"max_digits must be >= 1, got {max_digits}")
    if len(text) > max_digits or not is_ascii_digits(text):
        return None
    return int(text)


def parse_ascii_float(text: str) -> float | None:
    """The value of `text` if it is a finite decimal number in ASCII, else None.

    `1`, `-0.5`, `.25`, `2.5e-3` are numbers; `inf`, `nan`, `1e999` (infinite), `1_0` and
    `٣٠` are not (float() reads the last two as 10.0 and 30.0). No surrounding spaces.
    """
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None
