"""Benchmark: what does one frame of RaftClusterWidget cost in the kernel? (a script)

A 5-server cluster under closed-loop client load (``set_load``).  Each frame advances
the simulation by ``--frame-ms`` of simulated time (not timed) and then redraws
(``render()``: read the cluster, build every trace, assign them inside one
``fig.batch_update()``) — that redraw is the frame cost.  Reported: median / p90 / max
over ``--frames`` frames, plus the simulation step per frame for comparison.

Two settings:

- ``process``: plain Python, the widgets have no frontend (comm messages go nowhere);
- ``kernel``: the same code inside a real IPython kernel (jupyter_client), where every
  ``batch_update`` is serialised and sent on the widget's comm as in JupyterLab (no
  browser attached, so rendering in the browser is not counted).

    python benchmarks/bench_raft_widget.py [--frames 200] [--frame-ms 20] [--load 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

CODE = r'''
import json, statistics, time
from course_lib.viz.raft_widget import RaftClusterWidget
w = RaftClusterWidget(5, seed={seed})
{display}
w.step(1000)
w.set_load({load})
for _ in range(20):
    w.step({frame_ms})
render, advance = [], []
for _ in range({frames}):
    t = time.perf_counter()
    w.advance({frame_ms})
    advance.append((time.perf_counter() - t) * 1000)
    render.append(w.render())
dots = len(w.cluster.in_flight())
w.close()
print("RESULT " + json.dumps(dict(render=render, advance=advance, dots=dots,
                                 last_index=max(s["last_index"] for s in w.cluster.states().values()))))
'''


def summary(xs):
    xs = sorted(xs)
    return (statistics.median(xs), xs[int(0.9 * (len(xs) - 1))], xs[-1])


def in_process(args):
    code = CODE.format(seed=args.seed, load=args.load, frame_ms=args.frame_ms, frames=args.frames, display="")
    out = {}
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, {})
    for line in buf.getvalue().splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
    return out


def in_kernel(args):
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = CODE.format(seed=args.seed, load=args.load, frame_ms=args.frame_ms, frames=args.frames,
                           display="from IPython.display import display; display(w)")
        lines = []
        kc.execute(code)
        comm_msgs = 0
        while True:
            msg = kc.get_iopub_msg(timeout=300)
            kind = msg["msg_type"]
            if kind == "stream":
                lines.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind in ("comm_msg", "comm_open"):
                comm_msgs += 1
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        for line in "".join(lines).splitlines():
            if line.startswith("RESULT "):
                out = json.loads(line[7:])
                out["comm_msgs"] = comm_msgs
                return out
        raise RuntimeError("no result from the kernel: " + "".join(lines)[-2000:])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--frame-ms", type=float, default=20.0, help="simulated ms per frame")
    p.add_argument("--load", type=int, default=2, help="closed-loop writers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-kernel", action="store_true")
    args = p.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}; 5 servers, {args.load} "
          f"closed-loop writers, {args.frames} frames of {args.frame_ms:g} simulated ms")
    runs = [("process", in_process)] + ([] if args.no_kernel else [("kernel", in_kernel)])
    for name, fn in runs:
        began = time.perf_counter()
        r = fn(args)
        med, p90, worst = summary(r["render"])
        amed, ap90, _ = summary(r["advance"])
        extra = f", {r['comm_msgs']} comm messages" if "comm_msgs" in r else ""
        print(f"{name:8s} frame (render) median {med:5.2f} ms  p90 {p90:5.2f} ms  max {worst:6.2f} ms"
              f" | simulation step median {amed:5.2f} ms  p90 {ap90:5.2f} ms"
              f" | log length {r['last_index']}, {r['dots']} messages in flight at the end{extra}"
              f" | {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
