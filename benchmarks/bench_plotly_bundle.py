"""Benchmark: plotly's widget bundle inline in every figure vs loaded by URL once per page
(a script, not a test).

JupyterLab is started the way ``make lab`` starts it (``tests.browser.lab.LabServer``,
on a temporary copy of the course) and driven in Debian's headless Chromium at
1400x900, twice in the same run:

- ``inline``: the course's server extension disabled
  (``--ServerApp.jpserver_extensions=course_lib.lab=False``), so kernels get no
  ``$COURSE_PLOTLY_BUNDLE_URL`` and every FigureWidget carries plotly's 5 MB bundle in
  its model state, as plotly ships it;
- ``by_url``: the course as a learner gets it (``course_lib.viz.plotly_bundle``).

For a notebook (default 02_1, two Raft widgets: six FigureWidgets) it runs all cells,
then reloads the page while the kernel holds every model (a reopen), and measures each
time: bytes received over the websockets, the time each figure's ES module took to
load (from anywidget's Blob URL to its release; anywidget allows a model 2 s),
main-thread long tasks, and page and console errors ("[anywidget] Failed to initialize
model." is the one the change is about).
``--throttle N`` slows the page's CPU N times (Chromium's CPU throttling), as on a
slow machine.

    python benchmarks/bench_plotly_bundle.py [--notebook notebooks/02_1_raft.ipynb] [--throttle 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.lab import VIEWPORT, LabServer, Notebook, chromium, wait_until  # noqa: E402

VARIANTS = {"inline": ("--ServerApp.jpserver_extensions=course_lib.lab=False",), "by_url": ()}

PAGE_PROBES = """window.__long = [];
new PerformanceObserver(l => l.getEntries().forEach(e => window.__long.push(e.duration)))
  .observe({type: 'longtask', buffered: true});
window.__esm = [];
const create = URL.createObjectURL, revoke = URL.revokeObjectURL, began = {};
URL.createObjectURL = function (blob) {
  const url = create.call(URL, blob);
  if (blob && blob.type === 'text/javascript') began[url] = performance.now();
  return url; };
URL.revokeObjectURL = function (url) {
  if (url in began) { window.__esm.push(performance.now() - began[url]); delete began[url]; }
  return revoke.call(URL, url); };"""


class Bytes:
    """Bytes received over the page's websockets since the last :meth:`take`."""

    def __init__(self, page) -> None:
        self.received = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.received += len(payload) if isinstance(payload, (bytes, bytearray)) else len(payload.encode())

    def take(self) -> int:
        n, self.received = self.received, 0
        return n


def drain(page, name: str) -> list:
    return page.evaluate(f"(() => {{ const a = window.{name}; window.{name} = []; return a; }})()")


def phase(page, meter: Bytes, errors: list, began: float) -> dict:
    long = drain(page, "__long")
    loads = sorted(drain(page, "__esm"))
    return {"seconds": round(time.monotonic() - began, 1), "ws_MB": round(meter.take() / 1e6, 2),
            "module_loads": len(loads),
            "module_load_ms": (round(loads[0]), round(loads[-1])) if loads else None,
            "long_tasks_s": round(sum(long) / 1000, 2),
            "failed_to_initialize": sum("Failed to initialize model" in e for e in errors),
            "other_errors": [e[:120] for e in errors if "Failed to initialize model" not in e]}


def measure(variant: str, notebook: str, throttle: float) -> dict:
    server = LabServer(extra_args=VARIANTS[variant]).start()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(PAGE_PROBES)
            page = context.new_page()
            meter = Bytes(page)
            nb = Notebook(page, server, notebook).open()
            if throttle > 1:
                context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            meter.take()
            drain(page, "__long")
            began = time.monotonic()
            nb.run_all(timeout=600)
            wait_until(lambda: not nb.widget_problems(), 120, "every widget drawn", every=0.2)
            errors = lambda: nb.log.page_errors + nb.log.console_errors  # noqa: E731
            run = phase(page, meter, errors(), began)
            seen = len(errors())
            began = time.monotonic()
            page.reload()
            if throttle > 1:
                context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
            nb.wait_kernel_idle(120)
            time.sleep(12.0 * max(1.0, throttle / 2))    # the kernel's models arrive and load
            reopen = phase(page, meter, errors()[seen:], began)
            context.close()
    finally:
        server.stop()
    return {"run_all": run, "reopen": reopen}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", default="notebooks/02_1_raft.ipynb")
    ap.add_argument("--throttle", type=float, default=1.0, help="CPU slow-down of the page (1 = none)")
    args = ap.parse_args(argv)
    if args.throttle < 1:
        ap.error("--throttle must be >= 1")
    print(f"# bench_plotly_bundle — Python {platform.python_version()}, {args.notebook}, "
          f"page CPU throttled {args.throttle:g}x")
    results = {v: measure(v, args.notebook, args.throttle) for v in VARIANTS}
    print("\n| variant | phase | s | websocket MB | figure modules | module load ms (min–max) "
          "| long tasks s | 'Failed to initialize model' | other page errors |")
    print("|---|---|---:|---:|---:|---|---:|---:|---|")
    for v, r in results.items():
        for ph in ("run_all", "reopen"):
            p = r[ph]
            span = "–".join(map(str, p["module_load_ms"])) if p["module_load_ms"] else "—"
            print(f"| {v} | {ph} | {p['seconds']} | {p['ws_MB']} | {p['module_loads']} | {span} "
                  f"| {p['long_tasks_s']} | {p['failed_to_initialize']} | {len(p['other_errors'])} |")
    for ph in ("run_all", "reopen"):
        a, b = results["inline"][ph], results["by_url"][ph]
        ratio = a["ws_MB"] / b["ws_MB"] if b["ws_MB"] else float("inf")
        print(f"{ph}: websocket bytes inline / by URL = {ratio:.1f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
