"""JSON text for the fuzz tests, including what json.dumps never writes: NaN, 1e400, a
5000-digit integer, a key twice; and mutations of real JSON documents anywhere inside."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .fuzzing import huge_numbers, long_number, nasty_text


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is: NaN, Infinity, 1e400, a 5000-digit integer."""

    text: str


@dataclass(frozen=True)
class Obj:
    """A JSON object as its pairs, so a key may appear twice."""

    pairs: tuple[tuple[str, Any], ...]


RAW_JSON_NUMBERS = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1E-400",
    "10^400",
    "9 x 5000",
    "-0",
    "-0.0",
    "2e-308",
    "9007199254740993",
    "-9007199254740993",
    "1.7976931348623157e308",
)


def to_json(value: Any) -> str:
    """JSON text of a tree of Obj, Raw, lists and plain values."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Obj):
        return "{" + ",".join(json.dumps(k) + ":" + to_json(v) for k, v in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def from_plain(value: Any) -> Any:
    """A plain JSON-like Python value as a tree to_json and mutated_json understand."""
    if isinstance(value, dict):
        return Obj(tuple((k, from_plain(v)) for k, v in value.items()))
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value


EDGES = (0, -1, 1, 2**53 - 1, 2**53, 1 - 2**53, -(2**53), 0.0, -0.0, 1.0, 1.0000001, 60.0)
EDGES += (60.000001, 946_684_800_000, 946_684_799_999.9, 4_102_444_800_000, 4_102_444_800_000.5)
"Range limits of W3C counters, ratios, seconds and timestamps, and just past them."


@functools.cache
def json_leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(EDGES),
        st.sampled_from(RAW_JSON_NUMBERS).map(long_number).map(Raw),
        st.integers(-(2**64), 2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
        nasty_text(),
        huge_numbers(),  # numbers as strings, "٣" among them
    )


@functools.cache
def json_keys(keys: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(keys), nasty_text()) if keys else nasty_text()


@functools.cache
def json_trees(keys: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Any JSON shape; object keys are often `keys` and may repeat."""
    key = json_keys(keys)
    return st.recursive(
        json_leaves(),
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.lists(st.tuples(key, children), max_size=6).map(lambda p: Obj(tuple(p))),
        ),
        max_leaves=25,
    )


@st.composite
def mutated_json(
    draw: st.DrawFn, bases: Sequence[Any], keys: tuple[str, ...], *, max_changes: int = 4
) -> str:
    """One of `bases` (plain values) with 0..max_changes changes somewhere inside: a value replaced
    (NaN, 1e400, "٣", any shape), a key dropped, repeated or added, a node nested 1..2000
    deep; as JSON text."""
    tree = from_plain(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, max_changes))):
        tree = _mutate_node(draw, tree, keys)
    return to_json(tree)


def _paths(node: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every node of a tree, as the child indexes that lead to it."""
    children = (
        [v for _, v in node.pairs]
        if isinstance(node, Obj)
        else node
        if isinstance(node, list)
        else []
    )
    found = [path]
    for i, child in enumerate(children):
        found += _paths(child, (*path, i))
    return found


def _at(node: Any, path: tuple[int, ...], change: Callable[[Any], Any]) -> Any:
    """The tree with the node at `path` replaced by change(node)."""
    if not path:
        return change(node)
    i, rest = path[0], path[1:]
    if isinstance(node, Obj):
        pairs = list(node.pairs)
        pairs[i] = (pairs[i][0], _at(pairs[i][1], rest, change))
        return Obj(tuple(pairs))
    items = list(node)
    items[i] = _at(items[i], rest, change)
    return items


def _mutate_node(draw: st.DrawFn, tree: Any, keys: tuple[str, ...]) -> Any:
    """One change at a node drawn uniformly from the whole tree (most are deep inside)."""
    paths = _paths(tree)
    path = paths[draw(st.integers(0, len(paths) - 1))]
    return _at(tree, path, lambda node: _change(draw, node, keys))


def _change(draw: st.DrawFn, node: Any, keys: tuple[str, ...]) -> Any:
    change = draw(st.sampled_from(["replace", "nest", "drop", "repeat", "add"]))
    if change == "nest":
        depth = draw(st.sampled_from([1, 2, 50, 2000]))
        if depth > 50:  # as text: to_json would recurse too deep itself
            return Raw("[" * depth + to_json(node) + "]" * depth)
        wrapped: Any = node
        for _ in range(depth):
            wrapped = [wrapped] if draw(st.booleans()) else Obj((("x", wrapped),))
        return wrapped
    if isinstance(node, Obj) and node.pairs and change in ("drop", "repeat"):
        i = draw(st.integers(0, len(node.pairs) - 1))
        pairs = list(node.pairs)
        if change == "drop":
            del pairs[i]
        else:
            pairs.append((pairs[i][0], draw(json_trees(keys))))
        return Obj(tuple(pairs))
    if isinstance(node, Obj) and change == "add":
        key = draw(json_keys(keys))
        return Obj((*node.pairs, (key, draw(json_trees(keys)))))
    return draw(json_trees(keys))
