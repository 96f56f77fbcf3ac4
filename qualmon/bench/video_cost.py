"""`qualmon bench --video`: what a video leg costs qualmon, as a multiple of an audio leg.

Issue 16's goal: a video leg (~30 fps, ~1 Mbit/s) costs ≤ 1.5 × an audio leg's full
pipeline. Each round measures two fresh qualmon receivers (as shipped, pipeline.measure) back
to back, in alternating order: N legs of pre-encoded Opus, and the same N legs with replayed
VP8 (sim/video_replay.py: encoded once, so the publishers cost little CPU). The video part's
cost is (audio+video − audio-only) / audio-only, per leg-second, taken within a round; the
median over rounds is reported. The load is shown as the receiver measured it (frame rate,
bitrate, resolution from `GET /v1/sessions/{id}` legs.<role>.video), with the aiortc decoder
threads still alive in the receiver (none should be).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict
from typing import Any

import aiohttp

from ..service.auth import issue_token
from ..sim.video_replay import moving_picture_vp8
from .pipeline import ROLES, ReceiverResult, measure, session_of_leg

GOAL_VIDEO_MULTIPLE = 1.5


def video_multiple(audio_only: float, audio_video: float) -> float:
    """The video part of an audio+video leg's cost, as a multiple of an audio-only leg's
    (both CPU per leg-second of the same receiver at the same leg count)."""
    if audio_only <= 0:
        raise ValueError("an audio leg's cost must be positive")
    return (audio_video - audio_only) / audio_only


async def inspect_video(
    http: aiohttp.ClientSession, url: str, secret: str, legs: int
) -> dict[str, Any]:
    """Every role's `video` as the receiver measured it (None without video), and the
    receiver's live aiortc decoder threads."""
    headers = {"Authorization": f"Bearer {issue_token(secret, scope='admin')}"}
    videos: list[dict[str, Any] | None] = []
    for session in sorted({session_of_leg(i) for i in range(legs)}):
        async with http.get(f"{url}/v1/sessions/{session}", headers=headers) as r:
            body = await r.json()
        for role in ROLES:
            videos.append((body["legs"].get(role) or {}).get("video"))
    async with http.get(url + "/bench/proc") as r:
        proc = await r.json()
    return {"videos": videos, "decoder_threads": proc["decoder_threads"]}


def load_summary(observed: dict[str, Any] | None) -> dict[str, Any]:
    """Medians (and lows) of the frame rate and bitrate the receiver measured per video leg."""
    videos = [v for v in (observed or {}).get("videos", []) if v]
    if not videos:
        return {"video_legs": 0}
    fps = [float(v["frames_per_second"] or 0.0) for v in videos]
    bps = [float(v["bitrate_bps"] or 0.0) for v in videos]
    return {
        "video_legs": len(videos),
        "fps_median": statistics.median(fps),
        "fps_min": min(fps),
        "mbps_median": statistics.median(bps) / 1e6,
        "mbps_min": min(bps) / 1e6,
        "freezes": sum(int(v["freezes"] or 0) for v in videos),
        "frames_incomplete": sum(int(v["frames_incomplete"] or 0) for v in videos),
        "size": sorted({f"{v['width']}x{v['height']}" for v in videos}),
    }


def report(rounds: list[dict[str, ReceiverResult]]) -> dict[str, Any]:
    multiples = [
        video_multiple(r["audio"].cpu_ms_per_leg_second, r["video"].cpu_ms_per_leg_second)
        for r in rounds
    ]
    multiple = statistics.median(multiples)
    threads = sorted(
        {
            t
            for r in rounds
            for res in r.values()
            for t in (res.observed or {}).get("decoder_threads", [])
        }
    )
    return {
        "rounds": [
            {kind: asdict(res) for kind, res in r.items()}
            | {"load": load_summary(r["video"].observed)}
            for r in rounds
        ],
        "multiples": multiples,
        "multiple": multiple,
        "decoder_threads": threads,
        "legs": rounds[0]["audio"].legs,
        "goals": {"video_multiple<=1.5": multiple <= GOAL_VIDEO_MULTIPLE},
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(
        f"{'round':<7}{'audio ms/leg·s':>15}{'a+v ms/leg·s':>14}{'video ×audio':>14}"
        f"{'fps p50/min':>13}{'Mbit/s p50/min':>16}{'freezes':>9}{'lag p99':>9}"
        f"{'pub cores':>11}"
    )
    for i, (r, multiple) in enumerate(zip(result["rounds"], result["multiples"], strict=True), 1):
        a, v, load = r["audio"], r["video"], r["load"]
        fps = f"{load.get('fps_median', 0):.1f}/{load.get('fps_min', 0):.1f}"
        mbps = f"{load.get('mbps_median', 0):.2f}/{load.get('mbps_min', 0):.2f}"
        print(
            f"{i:<7}{a['cpu_ms_per_leg_second']:>15.2f}{v['cpu_ms_per_leg_second']:>14.2f}"
            f"{multiple:>14.2f}{fps:>13}{mbps:>16}{load.get('freezes', 0):>9}"
            f"{v['lag_p99_ms']:>7.1f}ms{v['publisher_cores']:>11.2f}"
        )
    print()
    print(f"{result['legs']} legs each; audio = qualmon as shipped with Opus legs; a+v = the")
    print("same legs with VP8 video; fps and Mbit/s as the receiver measured each video leg.")
    sizes = sorted({s for r in result["rounds"] for s in r["load"].get("size", [])})
    legs = [r["load"]["video_legs"] for r in result["rounds"]]
    print(f"video legs measured per round: {legs}; sizes: {', '.join(sizes) or '–'}")
    threads = result["decoder_threads"]
    print(f"aiortc decoder threads alive in the receivers: {len(threads)} {threads or ''}")
    spread = ", ".join(f"{m:.2f}" for m in result["multiples"])
    print(
        f"video leg's cost / audio leg's full pipeline  median {result['multiple']:.2f}"
        f"  [{spread}]  (goal <= {GOAL_VIDEO_MULTIPLE})"
    )


async def run_video_bench(args: argparse.Namespace) -> int:
    if args.legs < 1 or args.seconds <= 0 or args.rounds < 1:
        print("qualmon bench: --legs and --rounds must be >= 1, --seconds > 0", file=sys.stderr)
        return 2
    frames = moving_picture_vp8()
    rounds = []
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", flush=True)
        # Alternating order, so a drift across the round weighs on both sides alike.
        order = ("audio", "video") if i % 2 == 0 else ("video", "audio")
        results = {
            kind: await measure(
                "qualmon",
                args.legs,
                args.seconds,
                video=frames if kind == "video" else None,
                inspect=inspect_video,
            )
            for kind in order
        }
        rounds.append({"audio": results["audio"], "video": results["video"]})
    result = report(rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0
