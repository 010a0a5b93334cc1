"""Benchmark: does the browser keep up while the Raft widget plays? (a script, not a test)

JupyterLab is started the way ``make lab`` starts it (``tests.browser.lab.LabServer``,
on a temporary copy of the course) and driven in Debian's headless Chromium at
1400x900.  For each variant a small notebook is written into the server's temporary
root (never into the repository): it builds a 5-server ``RaftClusterWidget`` at the
default speed; the benchmark runs it, clicks the widget's Play button, and measures:

- **long tasks**: the share of main-thread time lost to tasks over 50 ms
  (``PerformanceObserver('longtask')``: sum of durations / wall time) over
  ``--seconds`` of play — goal under 20 %;
- **Pause round trip**: from the pointer going down on Pause to the first animation
  frame showing "paused" in the widget (a ``requestAnimationFrame`` poll in the page,
  so the time counts until the page could paint it), ``--clicks`` times with play
  resumed in between — goal under 300 ms; the same for Kill and Partition while playing;
- **frames drawn**: plotly redraws (``plotly_afterplot``, fired by full redraws only) and
  frames shown (animation frames in which some figure's SVG changed) per second of play, and how
  many comm messages the kernel sent.

Variants, all in the same run so the ratios compare like with like:

- ``before``: the widget as committed at ``--before-rev`` (default ``aa877f1``, the
  last commit before frame pacing), its module copied next to the notebook: one figure
  with subplots, redrawn whole every frame at a fixed rate;
- ``unpaced``: today's widget with ``pacing=False`` (sends every frame at the fixed
  rate, never waits for the browser);
- ``paced``: today's widget as a learner gets it.

    python benchmarks/bench_browser.py [--seconds 20] [--clicks 5] [--variants before,unpaced,paced]
                                       [--shots /tmp/raftshots]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from tests.browser.lab import VIEWPORT, LabServer, Notebook, chromium  # noqa: E402

MODULE_PATH = "course_lib/viz/raft_widget.py"
# The widget before frame pacing: the baseline of the "before" variant.
BEFORE_REV = "aa877f1"

# page-side instruments: long tasks, plotly redraws, pointer-down times
INSTRUMENT = r"""() => {
  if (window.__bench) return;
  const b = window.__bench = {long: [], afterplot: 0, painted: 0, dirty: false, down: 0,
                              watching: new Set()};
  // frames shown: animation frames in which some figure's SVG changed
  const seen = new MutationObserver(() => { b.dirty = true; });
  const tick = () => { if (b.dirty) { b.painted += 1; b.dirty = false; } requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) b.long.push([e.startTime, e.duration]);
  }).observe({type: 'longtask', buffered: false});
  document.addEventListener('pointerdown', () => { b.down = performance.now(); }, true);
  const hook = () => {
    for (const gd of document.querySelectorAll('.js-plotly-plot')) {
      if (!b.watching.has(gd) && gd.on) {
        b.watching.add(gd);
        gd.on('plotly_afterplot', () => { b.afterplot += 1; });
        seen.observe(gd, {attributes: true, childList: true, subtree: true, characterData: true});
      }
    }
  };
  hook();
  setInterval(hook, 500);
}"""

LONG_SHARE = r"""([t0, t1]) => {
  let lost = 0;
  for (const [s, d] of window.__bench.long) {
    const a = Math.max(s, t0), z = Math.min(s + d, t1);
    if (z > a) lost += z - a;
  }
  return {lost, wall: t1 - t0, n: window.__bench.long.filter(([s, d]) => s + d > t0 && s < t1).length,
          worst: Math.max(0, ...window.__bench.long.filter(([s]) => s >= t0 && s < t1).map(([s, d]) => d))};
}"""

# resolves at the first animation frame where some widget HTML shows ``words``
WAIT_SHOWN = r"""([words, timeout]) => new Promise(resolve => {
  const began = performance.now();
  const tick = () => {
    const now = performance.now();
    for (const el of document.querySelectorAll('.widget-html-content')) {
      if (el.textContent.trim().startsWith(words)) { resolve({shown: now, down: window.__bench.down}); return; }
    }
    if (now - began > timeout) { resolve({shown: null, down: window.__bench.down}); return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})"""


def notebook_json(setup: str) -> dict:
    cells = [setup, "w = RaftClusterWidget(5, seed=1)\nw"]
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{k}",
                       "metadata": {}, "outputs": [], "source": src}
                      for k, src in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def write_variant(root: Path, name: str, before_rev: str) -> str:
    folder = root / "notebooks"
    if name == "before":
        old = subprocess.run(["git", "show", f"{before_rev}:{MODULE_PATH}"], cwd=REPO,
                             check=True, capture_output=True, text=True).stdout
        (folder / "_bench_raft_before.py").write_text(old)
        setup = "from _bench_raft_before import RaftClusterWidget"
    elif name == "unpaced":
        setup = ("import functools\nfrom course_lib.viz.raft_widget import RaftClusterWidget\n"
                 "RaftClusterWidget = functools.partial(RaftClusterWidget, pacing=False)")
    elif name == "paced":
        setup = "from course_lib.viz.raft_widget import RaftClusterWidget"
    else:
        raise ValueError(f"unknown variant {name!r}")
    path = f"notebooks/_bench_raft_{name}.ipynb"
    (root / path).write_text(json.dumps(notebook_json(setup)))
    return path


def button(page, label: str):
    return page.locator(f".jp-OutputArea-output button:text-is('{label}')").first


def press(page, label: str, timeout_ms: float = 60_000) -> None:
    """Click a widget button, waiting for a swamped page as long as it takes."""
    try:
        button(page, label).click(timeout=timeout_ms)
    except PlaywrightTimeout:
        print(f"  (clicking {label} took over {timeout_ms / 1000:.0f} s)", flush=True)


def click_and_time(page, label: str, words: str, timeout_ms: float = 60_000) -> float | None:
    """Click the widget button ``label``; ms until ``words`` shows (None: never)."""
    page.evaluate("() => { window.__bench.down = 0; }")
    # start the poll first (not awaited: it runs in the page), then click
    page.evaluate("([w, t]) => { window.__wait = (" + WAIT_SHOWN + ")([w, t]); }", [words, timeout_ms])
    try:
        button(page, label).click(timeout=timeout_ms)
    except PlaywrightTimeout:
        return None
    result = page.evaluate("() => window.__wait")
    if result["shown"] is None or not result["down"]:
        return None
    return result["shown"] - result["down"]


def median_max(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), max(xs)) if xs else (float("nan"), float("nan"))


def run_variant(browser, server: LabServer, name: str, args) -> dict:
    path = write_variant(server.root, name, args.before_rev)
    page = browser.new_page(viewport=VIEWPORT)
    nb = Notebook(page, server, path).open()
    nb.run_all(timeout=120)
    page.wait_for_selector(".jp-OutputArea-output .js-plotly-plot", timeout=60_000)
    time.sleep(2.0)
    page.evaluate(INSTRUMENT)
    shots = Path(args.shots) if args.shots else None
    if shots:
        nb.screenshot(shots, f"bench-{name}-idle")

    t0 = page.evaluate("() => performance.now()")
    plots0, painted0 = page.evaluate("() => [window.__bench.afterplot, window.__bench.painted]")
    press(page, "Play")
    time.sleep(args.seconds)
    t1 = page.evaluate("() => performance.now()")
    plots1, painted1 = page.evaluate("() => [window.__bench.afterplot, window.__bench.painted]")
    long = page.evaluate(LONG_SHARE, [t0, t1])
    if shots:
        nb.screenshot(shots, f"bench-{name}-playing")

    pauses = []
    for _ in range(args.clicks):
        pauses.append(click_and_time(page, "Pause", "paused"))
        time.sleep(0.5)
        press(page, "Play")
        time.sleep(2.5)
    kills, partitions = [], []
    for _ in range(max(1, args.clicks // 2)):
        kills.append(click_and_time(page, "Kill", "killed "))
        time.sleep(1.0)
        press(page, "Restart")
        time.sleep(1.5)
        partitions.append(click_and_time(page, "Partition", "partitioned"))
        time.sleep(1.0)
        press(page, "Heal")
        time.sleep(1.5)
    if shots:
        nb.screenshot(shots, f"bench-{name}-after-clicks")
    t2 = page.evaluate("() => performance.now()")
    long_clicks = page.evaluate(LONG_SHARE, [t1, t2])
    press(page, "Pause")
    errors = nb.log.page_errors + [e for e in nb.log.console_errors if "plotly" in e.lower()]
    page.close()
    server.shutdown_kernels()
    return dict(long=long, long_clicks=long_clicks, fps=(plots1 - plots0) / ((t1 - t0) / 1000),
                shown=(painted1 - painted0) / ((t1 - t0) / 1000),
                pauses=pauses, kills=kills, partitions=partitions, errors=errors[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of play measured")
    p.add_argument("--clicks", type=int, default=5, help="Pause clicks (Kill/Partition: half)")
    p.add_argument("--variants", default="before,unpaced,paced")
    p.add_argument("--before-rev", default=BEFORE_REV, help="git revision of the 'before' widget")
    p.add_argument("--shots", default="", help="folder for screenshots (none if empty)")
    args = p.parse_args()
    load = os.getloadavg()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} at start; Chromium headless {VIEWPORT['width']}x{VIEWPORT['height']}; "
          f"5 servers at default speed, {args.seconds:g} s of play")
    results = {}
    with LabServer() as server, chromium() as browser:
        for name in args.variants.split(","):
            began = time.monotonic()
            r = results[name] = run_variant(browser, server, name, args)
            pm, px = median_max(r["pauses"])
            km, kx = median_max(r["kills"])
            qm, qx = median_max(r["partitions"])
            share = r["long"]["lost"] / r["long"]["wall"]
            share_clicks = r["long_clicks"]["lost"] / r["long_clicks"]["wall"]
            print(f"{name:8s} long tasks {share:6.1%} of {r['long']['wall'] / 1000:4.1f} s "
                  f"({r['long']['n']} tasks, worst {r['long']['worst']:.0f} ms; {share_clicks:.1%} "
                  f"while clicking) | {r['fps']:4.1f} redraws/s, {r['shown']:4.1f} frames shown/s | Pause -> shown median "
                  f"{pm:6.0f} ms max {px:6.0f} ms | Kill {km:.0f}/{kx:.0f} ms | Partition "
                  f"{qm:.0f}/{qx:.0f} ms (median/max) | {time.monotonic() - began:.0f} s"
                  + (f" | errors: {r['errors']}" if r["errors"] else ""))
            missed = sum(x is None for x in r["pauses"] + r["kills"] + r["partitions"])
            if missed:
                print(f"{'':8s} {missed} click(s) never showed within 60 s")
    if "before" in results and "paced" in results:
        b, a = results["before"], results["paced"]
        sb, sa = (b["long"]["lost"] / b["long"]["wall"], a["long"]["lost"] / a["long"]["wall"])
        pb, pa = median_max(b["pauses"])[0], median_max(a["pauses"])[0]
        # under one long task in the run the ratio means nothing: say so instead
        less = f"{sb / sa:.1f}x less" if sa >= 0.005 else "under 0.5% left"
        print(f"paced vs before: long-task share {sa:.1%} vs {sb:.1%} "
              f"({less}); Pause round trip {pa:.0f} vs {pb:.0f} ms "
              f"({pb / max(pa, 1):.1f}x faster)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
