"""The one check for digits from outside: ASCII 0-9 only."""

from __future__ import annotations

import pytest

from qualmon.core.ascii_digits import is_ascii_digits, parse_ascii_float, parse_ascii_int

# Each is accepted by str.isdigit() and by int() or \d; none is an ASCII digit.
UNICODE_DIGITS = {
    "superscript two": "²",  # isdigit() yes, int() refuses
    "Arabic-Indic three": "٣",  # int() reads 3
    "extended Arabic-Indic five": "۵",  # int() reads 5
    "Devanagari one": "१",  # int() reads 1
    "fullwidth nine": "９",  # int() reads 9
}


def test_python_itself_is_lenient() -> None:
    """Why the helper exists: these are the behaviours it must not inherit."""
    assert all(d.isdigit() for d in UNICODE_DIGITS.values())
    with pytest.raises(ValueError):
        int("²")
    assert int("٣") == 3
    assert int("９") == 9


@pytest.mark.parametrize("text", ["0", "7", "0042", "65535", "1" * 50])
def test_ascii_digits_are_digits(text: str) -> None:
    assert is_ascii_digits(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1_000",
        "1.0",
        "0x1F",
        "1e3",
        "١",
        "1\n",
        *UNICODE_DIGITS.values(),
    ],
)
def test_anything_else_is_not(text: str) -> None:
    assert not is_ascii_digits(text)


@pytest.mark.parametrize("name", sorted(UNICODE_DIGITS))
def test_one_unicode_digit_among_ascii_ones_is_refused(name: str) -> None:
    """A single foreign digit anywhere spoils the whole number."""
    for text in (UNICODE_DIGITS[name] + "12", "1" + UNICODE_DIGITS[name] + "2"):
        assert not is_ascii_digits(text)
        assert parse_ascii_int(text, max_digits=10) is None


@pytest.mark.parametrize(
    ("text", "max_digits", "value"),
    [
        ("0", 1, 0),
        ("007", 3, 7),
        ("65535", 5, 65535),
        ("123456", 5, None),  # one digit over the cap
        ("", 5, None),
        ("12a", 5, None),
        ("٣", 5, None),
        (" 5", 5, None),  # int() would strip the space
        ("1_0", 5, None),  # int() would read 10
    ],
)
def test_parse_ascii_int(text: str, max_digits: int, value: int | None) -> None:
    assert parse_ascii_int(text, max_digits=max_digits) == value


def test_the_cap_keeps_int_from_its_digit_limit() -> None:
    """int() raises ValueError past 4300 digits; the helper answers None instead."""
    long_number = "9" * 5000
    with pytest.raises(ValueError):
        int(long_number)
    assert parse_ascii_int(long_number, max_digits=10) is None


def test_a_cap_below_one_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="max_digits"):
        parse_ascii_int("1", max_digits=0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0.0),
        ("7", 7.0),
        ("-0.5", -0.5),
        ("+2", 2.0),
        (".25", 0.25),
        ("3.", 3.0),
        ("2.5e-3", 0.0025),
        ("1E3", 1000.0),
        ("0042.10", 42.1),
    ],
)
def test_ascii_decimal_numbers_are_floats(text: str, value: float) -> None:
    assert parse_ascii_float(text) == value


@pytest.mark.parametrize(
    "text",
    [
        *("", " 1", "1 ", "inf", "-inf", "nan", "NaN", "infinity", "1e999", "1_0", "0x1F"),
        *("1e", ".", "e3", "1.2.3", "--1", "١", "٣٠", "1\n", *UNICODE_DIGITS.values()),
    ],
)
def test_anything_else_is_not_a_float(text: str) -> None:
    """float() reads "٣٠" as 30.0, "1_0" as 10.0 and "inf" as infinite: none is a setting."""
    assert parse_ascii_float(text) is None
