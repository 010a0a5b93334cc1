"""Cost of one heartbeat + one phi: course_lib.detect vs the chapter, same run.

    python benchmarks/bench_detect.py [--quick]

Both detectors first see ``window + 100`` seeded heartbeats (intervals 0.1 s +
uniform jitter up to 10 ms), so the window is full and wrapping.  Then each timed
step is one ``heartbeat`` and one ``phi`` a random fraction (0-2) of a mean interval
later -- a live node polled.  The chapter's detector gets the same times through its
injectable clock.  Reported: microseconds per step (median of the repeats) and the
ratio.  Also: ours at windows 10 to 100,000 (flat), and phi of a node silent for
1,000 intervals (the far-tail path).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time

from course_lib.chapter.detector import ManualClock
from course_lib.chapter.detector import PhiAccrualDetector as ChapterDetector
from course_lib.detect import PhiAccrualDetector


def schedule(seed: int, warm: int, steps: int):
    rng = random.Random(seed)
    t = 0.0
    warmup = []
    for _ in range(warm):
        t += 0.1 + rng.random() * 0.01
        warmup.append(t)
    timed = []
    for _ in range(steps):
        t += 0.1 + rng.random() * 0.01
        timed.append((t, t + rng.random() * 0.2))
    return warmup, timed


def time_ours(window: int, steps: int, distribution: str = "normal") -> float:
    warmup, timed = schedule(1, window + 100, steps)
    d = PhiAccrualDetector(window_size=window, min_std_dev=0.001, distribution=distribution)
    for t in warmup:
        d.heartbeat("n", t)
    heartbeat, phi = d.heartbeat, d.phi
    began = time.perf_counter()
    for t, probe in timed:
        heartbeat("n", t)
        phi("n", probe)
    return (time.perf_counter() - began) / steps * 1e6


def time_chapter(window: int, steps: int) -> float:
    warmup, timed = schedule(1, window + 100, steps)
    clock = ManualClock()
    d = ChapterDetector(window_size=window, clock=clock)
    for t in warmup:
        clock.now = t
        d.heartbeat("n")
    heartbeat, phi = d.heartbeat, d.phi
    began = time.perf_counter()
    for t, probe in timed:
        clock.now = t
        heartbeat("n")
        clock.now = probe
        phi("n")
    return (time.perf_counter() - began) / steps * 1e6


def time_dead_phi(window: int, steps: int, distribution: str) -> float:
    warmup, _ = schedule(1, window + 100, 0)
    d = PhiAccrualDetector(window_size=window, min_std_dev=0.001, distribution=distribution)
    for t in warmup:
        d.heartbeat("n", t)
    probe = warmup[-1] + 1000 * 0.105
    phi = d.phi
    began = time.perf_counter()
    for _ in range(steps):
        phi("n", probe)
    return (time.perf_counter() - began) / steps * 1e6


def median_of(repeats: int, fn, *args) -> float:
    return statistics.median(fn(*args) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    ours_steps = 20_000 if args.quick else 100_000
    chapter_steps = 500 if args.quick else 3_000

    print(f"python {platform.python_version()} on {platform.machine()}, {sys.platform}")
    print()
    print("heartbeat + phi at window 1,000 (normal distribution), microseconds per step")
    ours = median_of(repeats, time_ours, 1000, ours_steps)
    theirs = median_of(repeats, time_chapter, 1000, chapter_steps)
    print("| detector | us/step |")
    print("|---|---|")
    print(f"| chapter (course_lib.chapter.detector) | {theirs:.2f} |")
    print(f"| course_lib.detect | {ours:.2f} |")
    print(f"speed-up: {theirs / ours:.0f}x")
    print()
    print("scaling with the window, microseconds per step")
    print("| window | course_lib.detect | chapter |")
    print("|---|---|---|")
    for window in (10, 100, 1000, 10_000, 100_000):
        mine = median_of(repeats, time_ours, window, ours_steps // 2)
        if window <= 10_000:
            steps = max(50, chapter_steps * 1000 // (window * 4) if window > 250 else chapter_steps)
            chap = f"{median_of(repeats, time_chapter, window, steps):.2f}"
        else:
            chap = "(skipped)"
        print(f"| {window:,} | {mine:.2f} | {chap} |")
    print()
    print("by distribution at window 1,000: heartbeat + phi (live) / phi of a node silent 1,000 intervals")
    print("| distribution | heartbeat + phi | dead-node phi |")
    print("|---|---|---|")
    for distribution in ("normal", "logistic", "exponential"):
        live = median_of(repeats, time_ours, 1000, ours_steps // 2, distribution)
        dead = median_of(repeats, time_dead_phi, 1000, ours_steps // 2, distribution)
        print(f"| {distribution} | {live:.2f} | {dead:.2f} |")


if __name__ == "__main__":
    main()
