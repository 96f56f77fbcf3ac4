"""The printed report of `qualmon bench --metrics-scale` (metrics_scale.py measures): the
result's JSON form in, lines out."""

from __future__ import annotations

from typing import Any

from .api_goals import GOAL_METRICS_SECONDS, goal_line


def print_result(result: dict[str, Any]) -> None:
    snaps = result["snapshots"]
    full = snaps[-1]
    print()
    print(
        f"serve --workers {result['workers']}: {result['legs_connected']} of"
        f" {result['legs_asked']} legs connected ({result['legs_failed']} failed; the last"
        f" {result['legs_asked'] - snaps[1]['sessions'] * 2} in {result['connect_seconds']:.0f}"
        " s, 4 at a time per load process); each sends Opus DTX (a 3-byte packet every 400 ms)"
    )
    print()
    heads = "".join(f"{_live(s):>32}" for s in snaps)
    print(f"{'GET /metrics':<20}{heads}")
    for i, where in enumerate(s["where"] for s in full["scrapes"]):
        print(f"{where:<20}" + "".join(f"{_scrape(s['scrapes'][i]):>32}" for s in snaps))
        print(
            f"{'  work (app)':<20}"
            + "".join(f"{_ms(s['scrapes'][i]['server']):>32}" for s in snaps)
        )
    print("(p50/p95/max as this process saw each GET, and the body's size; `work`: the")
    print(" Server-Timing of the answering worker: generating the exposition, no waiting)")
    print()
    print(f"{'':<16}{'worker':>8}{'legs':>6}{'cores':>7}{'lag p99':>10}{'RSS MB':>8}")
    for snap in snaps:
        for w in snap["workers"]:
            lag = "–" if w["lag_p99_ms"] is None else f"{w['lag_p99_ms']:.1f} ms"
            print(
                f"{_live(snap):<16}{w['pid']:>8}{w['legs']:>6}{w['cores']:>7.2f}{lag:>10}"
                f"{w['rss_mb']:>8.0f}"
            )
        print(f"{'':<16}{'load':>8}{'':>6}{snap['load_cores']:>7.2f}")
    offers = ", ".join(
        f"{w['offers']} (p95 {_ms_or_dash(w['offer_p95_ms'])})" for w in full["workers"]
    )
    print(f"offers answered per worker while the load connected, 4 at a time: {offers}")
    print()
    for snap in snaps[1:]:
        for key in ("pages", "one_big_page"):
            p = snap[key]
            print(
                f"GET /v1/sessions, {_live(snap)}, limit {p['limit']}: {p['pages']} page(s),"
                f" {p['distinct']} sessions ({p['sessions'] - p['distinct']} listed twice);"
                f" per page {_ms(p['time'])} (work {_ms(p['server'])});"
                f" largest {p['largest_bytes'] / 1024:.1f} KB"
            )
    print()
    worst = max(s["time"]["p95"] for s in full["scrapes"])
    print(
        goal_line(
            f"GET /metrics p95 (worst of workers and public port), {full['legs']} legs",
            worst,
            GOAL_METRICS_SECONDS,
        )
    )
    sizes = [max(s["size_bytes"] for s in snap["scrapes"]) for snap in snaps]
    print(
        f"/metrics size: {sizes[0] / 1024:.1f} KB without a session, {sizes[1] / 1024:.1f} KB"
        f" at {snaps[1]['sessions']} sessions, {sizes[2] / 1024:.1f} KB at {full['sessions']}"
        f" ({sizes[2] - sizes[1]:+d} bytes from {snaps[1]['sessions']} to {full['sessions']}"
        " sessions: constant in the number of sessions — "
        f"{'met' if abs(sizes[2] - sizes[1]) <= 0.05 * sizes[1] else 'MISSED'})"
    )


def _ms_or_dash(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _live(snap: dict[str, Any]) -> str:
    return f"{snap['sessions']} sessions" if snap["sessions"] else "no session"


def _scrape(s: dict[str, Any]) -> str:
    return f"{_ms(s['time'])}, {s['size_bytes'] / 1024:.1f} KB"


def _ms(spread: dict[str, Any] | None) -> str:
    if spread is None:
        return "–"
    return f"{spread['p50'] * 1000:.1f}/{spread['p95'] * 1000:.1f}/{spread['max'] * 1000:.1f} ms"
