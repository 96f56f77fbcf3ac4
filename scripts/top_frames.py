"""Summarise py-spy raw (collapsed) stacks: self and inclusive share of samples per frame.

`python scripts/top_frames.py OUT.txt [N] [--match TEXT]`: the N frames with the most
self samples and with the most inclusive samples (a frame counted once per stack).
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def main(path: str, n: int, match: str | None) -> None:
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in open(path):
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        # The thread name comes first; idle samples are the event loop's select.
        total += count
        self_counts[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"{total} samples")
    print("--- self")
    for f, c in self_counts.most_common(n):
        print(f"{100 * c / total:6.2f} %  {f}")
    print("--- inclusive")
    for f, c in incl.most_common(n * 2):
        if match is None or match in f:
            print(f"{100 * c / total:6.2f} %  {f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    match = None
    if "--match" in args:
        i = args.index("--match")
        match = args[i + 1]
        del args[i : i + 2]
    main(args[0], int(args[1]) if len(args) > 1 else 30, match)
