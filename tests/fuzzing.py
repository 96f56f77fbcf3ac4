"""Shared pieces of the property-based tests (`test_fuzz_*.py`, marker `fuzz`).

Example counts follow the Hypothesis profile that tests/conftest.py loads: `make test` runs
the "test" profile (a few hundred examples per pure target, a few dozen per endpoint target,
derandomized), `make fuzz` the "fuzz" profile (10,000 per target, QUALMON_FUZZ_EXAMPLES to
shorten). Strategies here make text that breaks parsers; the service helpers check that a
refusal leaves nothing behind and, under `make fuzz`, time every refusal server-side.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from qualmon.config import Settings
from qualmon.service.keys import sessions_key

from .conftest import Service, run_service
from .refusals import time_refusals

FUZZING = settings.get_current_profile_name() == "fuzz"
"True under `make fuzz` (HYPOTHESIS_PROFILE=fuzz): every target runs the profile's count."


def examples(test_count: int | None = None) -> settings:
    """Settings of one target: the profile's example count, or `test_count` under `make test`
    (endpoint targets cost a request each; aiortc answering an offer costs ~10 ms)."""
    if test_count is None or FUZZING:
        return settings()
    return settings(max_examples=test_count)


# -- text that breaks parsers ------------------------------------------------------

TRAPS = (
    "\u00b2",  # ² : str.isdigit() yes, int() no
    "\u0663",  # ٣ : int() reads 3
    "\uff19",  # ９ : int() reads 9
    "\u0660",
    "\U0001d7d7",  # 𝟗 mathematical digit
    "\x00",
    "\r",
    "\n",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x0c",
    "\x1c",
    "\ufeff",
    "\u200b",
    "\t",
    " ",
    "=",
    ":",
    "/",
    ";",
    ",",
    ".",
    "-",
    "_",
    "e",
    "\\",
    '"',
)
"Characters that parsers of digits, lines and separators trip over."
_LONG = {"10^400": "1" + "0" * 400, "9 x 5000": "9" * 5000}
"Long numbers by a short name: strategies show the name in reports, not 5000 digits."
HUGE_NUMBERS = (
    "10^400",
    "9 x 5000",  # past int()'s 4300-digit limit
    "1e400",
    "-1e400",
    "1E-400",
    "-0",
    "-1",
    "+1",
    "0x10",
    "1_000",
    "1.5",
    "NaN",
    "Infinity",
    "inf",
    "4294967296",
    "18446744073709551616",
    "65536",
    "256",
    "",
    "\u00b2",
    "\u0663",
    "\uff19\uff16",
    "9\u0663",
)
"Numbers (and near-numbers) that int(), float() and range checks get wrong."


def long_number(name: str) -> str:
    return _LONG.get(name, name)


@functools.cache
def huge_numbers() -> st.SearchStrategy[str]:
    return st.sampled_from(HUGE_NUMBERS).map(long_number)


@functools.cache
def nasty_chars() -> st.SearchStrategy[str]:
    """Any character but a surrogate, often one of TRAPS."""
    return st.one_of(
        st.sampled_from(TRAPS),
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from("0123456789"),
    )


@functools.cache
def nasty_text(*, max_size: int = 20) -> st.SearchStrategy[str]:
    return st.text(nasty_chars(), max_size=max_size)


@functools.cache
def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        huge_numbers(),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=False).map(repr),
    )


_DIGITS = re.compile(r"[0-9]+")
_TOKEN = re.compile(r"[^ :/;=,]+")


def _index(draw: st.DrawFn, items: Sequence[Any]) -> int:
    return draw(st.integers(0, len(items) - 1))


def _insert_chars(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i = _index(draw, lines)
    line = lines[i]
    at = draw(st.integers(0, len(line)))
    lines[i] = line[:at] + draw(st.text(nasty_chars(), min_size=1, max_size=3)) + line[at:]
    return lines


def _replace_char(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i = _index(draw, lines)
    line = lines[i]
    if line:
        at = _index(draw, line)
        lines[i] = line[:at] + draw(nasty_chars()) + line[at + 1 :]
    return lines


def _replace_number(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i = _index(draw, lines)
    found = list(_DIGITS.finditer(lines[i]))
    if found:
        m = found[_index(draw, found)]
        lines[i] = lines[i][: m.start()] + draw(numbers()) + lines[i][m.end() :]
    return lines


def _replace_token(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i = _index(draw, lines)
    found = list(_TOKEN.finditer(lines[i]))
    if found:
        m = found[_index(draw, found)]
        lines[i] = lines[i][: m.start()] + draw(nasty_text()) + lines[i][m.end() :]
    return lines


def _repeat(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i = _index(draw, lines)
    times = draw(st.sampled_from([1, 2, 3, 50, 400]))
    return lines[: i + 1] + [lines[i]] * times + lines[i + 1 :]


def _drop(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    if len(lines) > 1:
        del lines[_index(draw, lines)]
    return lines


def _swap(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    i, j = _index(draw, lines), _index(draw, lines)
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def _move(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    line = lines.pop(_index(draw, lines))
    lines.insert(draw(st.integers(0, len(lines))), line)
    return lines


def _borrow(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    """A line of another offer (or fragment) at any place."""
    lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(pool)))
    return lines


def _random_line(draw: st.DrawFn, lines: list[str], pool: list[str]) -> list[str]:
    name = draw(st.sampled_from([*"vostcmbazkri", "a=candidate:", "a=rtpmap:", "a=fmtp:"]))
    lines.insert(draw(st.integers(0, len(lines))), name + draw(nasty_text(max_size=40)))
    return lines


_MUTATIONS: tuple[Callable[[st.DrawFn, list[str], list[str]], list[str]], ...] = (
    _insert_chars,
    _replace_char,
    _replace_number,
    _replace_number,
    _replace_token,
    _repeat,
    _drop,
    _swap,
    _move,
    _borrow,
    _random_line,
)


@st.composite
def mutated_text(draw: st.DrawFn, bases: Sequence[str], *, max_mutations: int = 4) -> str:
    """One of `bases` (CRLF-separated lines), changed by 0..max_mutations line mutations,
    joined with CRLF, LF or a mix, possibly truncated."""
    base = draw(st.sampled_from(bases))
    lines = base.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    pool = sorted({line for b in bases for line in b.split("\r\n") if line})
    for _ in range(draw(st.integers(0, max_mutations))):
        lines = draw(st.sampled_from(_MUTATIONS))(draw, lines, pool) or [""]
    separator = draw(st.sampled_from(["\r\n", "\r\n", "\n", "\r", "\n\r"]))
    text = separator.join(lines) + draw(st.sampled_from([separator, "", "\r\n\r\n"]))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


# -- a service that times its refusals -------------------------------------------------


@asynccontextmanager
async def fuzz_service(settings: Settings) -> AsyncIterator[Service]:
    """A real app on loopback (conftest.run_service) whose refusals are timed."""
    async with run_service(settings, middlewares=(time_refusals,)) as service:
        yield service


def one_line_refusal(status: int, text: str) -> bool:
    """A 4xx whose body is at most one line (a reason, or aiohttp's own short answer)."""
    return 400 <= status < 500 and len(text.splitlines()) <= 1


# -- what a request may leave behind -----------------------------------------------------

_SERVER_TASKS = frozenset({"RequestHandler.start", "RequestHandler._handle_request"})
"aiohttp's per-connection and per-request tasks: they come and go with keep-alive."


def new_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks started since `before` and still running, aiohttp's connection tasks aside."""
    current = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks() - before
        if t is not current
        and not t.done()
        and getattr(t.get_coro(), "__qualname__", "") not in _SERVER_TASKS
    ]


@dataclass(frozen=True)
class Allocation:
    """What the registry holds: sessions (by identity) and legs."""

    sessions: tuple[tuple[str, int], ...]
    legs: tuple[str, ...]

    @classmethod
    def of(cls, service: Service) -> Allocation:
        registry = service.app[sessions_key]
        return cls(
            sessions=tuple(sorted((k, id(v)) for k, v in registry.sessions.items())),
            legs=tuple(sorted(registry.legs_by_resource)),
        )


async def raw_request(service: Service, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (aiohttp's client would refuse or re-encode them): the status
    and body of the answer, the connection closed after it."""
    host, port = service.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
