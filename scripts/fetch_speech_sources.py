"""Fetch the real recordings, build the speech corpus and print its offline baseline.

`make corpus` runs this. The recordings come from Debian packages (`apt-get download`, no
install) into .cache/speech-sources/ (or $QUALMON_CORPUS_CACHE); nothing is committed. Then
every fixture is placed, rendered and Opus-encoded (cached by content), and qualmon's speech
path is run over the 16 kHz legs offline, without WHIP: the numbers issue 13 starts from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qualmon.sim.corpus_fixtures import Corpus, fixture_names
from qualmon.sim.dialogue import ROLES
from qualmon.sim.phrases import RATE
from qualmon.sim.speech_score import score, table
from qualmon.sim.speech_sources import (
    PACKAGES,
    SourcesUnavailable,
    default_cache_dir,
    fetch_speech_sources,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache directory")
    parser.add_argument("--vad-mode", type=int, default=2, help="webrtcvad mode for the baseline")
    parser.add_argument("--fetch-only", action="store_true", help="stop after fetching")
    args = parser.parse_args()

    started = time.perf_counter()
    try:
        root = fetch_speech_sources(args.cache or default_cache_dir())
    except SourcesUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"recordings in {root} ({time.perf_counter() - started:.1f} s)")
    for package in PACKAGES:
        print(f"  {package.name}: {package.credit}; {package.licence}")
    if args.fetch_only:
        return 0

    mark = time.perf_counter()
    corpus = Corpus(root)
    print(f"voices cut into phrases in {time.perf_counter() - mark:.1f} s:")
    for name, voice in corpus.voices.items():
        seconds = sum(p.samples for p in voice.phrases) / RATE
        print(f"  {name}: {len(voice.phrases)} phrases ({seconds:.0f} s), {len(voice.words)} words")

    mark = time.perf_counter()
    scores = []
    for name in fixture_names():
        rendered = corpus.render(name)
        corpus.packets(rendered)  # encodes both legs, or finds them in the cache
        scores.append(score(rendered, vad_mode=args.vad_mode))
    seconds = time.perf_counter() - mark
    print(f"{len(scores)} fixtures rendered, Opus-encoded and scored in {seconds:.1f} s")

    for dialogue in dict.fromkeys(name.split("/")[0] for name in fixture_names()):
        truth = corpus.truth(dialogue)
        speech = truth.speech_seconds
        print(
            f"{dialogue} ({truth.seconds:.1f} s): speech "
            + ", ".join(f"{r} {speech[r]:.1f} s ({100 * truth.talk_share[r]:.0f} %)" for r in ROLES)
            + f"; overlap {truth.overlap_seconds:.2f} s; turns {truth.turn_count};"
            f" backchannels {truth.backchannels}; interruptions {truth.interruptions}"
        )
    print(f"\noffline baseline (webrtcvad mode {args.vad_mode}, qualmon's default smoothing):")
    print(table(scores))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
