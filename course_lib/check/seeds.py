"""Run many seeds of a seeded campaign across processes: failures, replay commands, rates.

What 6.5840 learners write for themselves (a script that runs a test 500 times in
parallel and counts how often it fails), for any function ``run(seed, **kwargs)`` whose
result has ``.ok`` (a bool, or a result that is itself a bool) — e.g.
``course_lib.raft.campaign.run_seed`` or ``course_lib.consensus.campaign.run_seed``::

    from course_lib.check.seeds import run_seeds
    report = run_seeds("course_lib.raft.campaign:run_seed", range(200), workers=2,
                       scenarios={"default": {}, "short": {"fault_ms": 1000}})
    print(report.text())          # per scenario: failures / runs, and each failing seed
    report.failures[0].replay     # 'python -m course_lib.raft.campaign --seed 17 --verbose'

or from a shell::

    python -m course_lib.check.seeds course_lib.raft.campaign:run_seed --seeds 200 --workers 2

The target is named ``"module:function"`` so that worker processes can import it.  An
exception in the target counts as a failure (its message is kept).  Each seed runs on
its own and is replayed alone: the replay command is the target module's
``replay_command(seed)`` when it has one (and the scenario passes no arguments), else
this module's CLI with ``--seed``.  Progress: a tqdm bar when tqdm is installed, else a
text line on stderr (``progress=False``: silent; a callable: called with
``(done, total, failures)``, e.g. to move an ipywidgets ``IntProgress``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Union


def resolve(target: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    mod, name = target.split(":")
    fn = getattr(importlib.import_module(mod), name, None)
    if not callable(fn):
        raise ValueError(f"{target!r}: {mod} has no function {name!r}")
    return fn


def _ok(result: Any) -> bool:
    if isinstance(result, bool):
        return result
    ok = getattr(result, "ok", None)
    if not isinstance(ok, bool):
        raise ValueError(f"a run must return a bool or an object with a bool .ok, got {result!r}")
    return ok


def _problem(result: Any) -> str:
    problems = getattr(result, "problems", None)
    if problems:
        return "; ".join(map(str, problems))[:300]
    summary = getattr(result, "summary", None)
    if callable(summary):
        return str(summary())[:300]
    return "failed"


def _run_one(target: str, scenario: str, kwargs: dict, seed: int) -> tuple:
    """In a worker: ``(scenario, seed, ok, problem, seconds)``; never raises."""
    started = time.perf_counter()
    try:
        result = resolve(target)(seed, **kwargs)
        ok = _ok(result)
        problem = "" if ok else _problem(result)
    except Exception as e:                          # the run's own bug: a failure to report
        ok, problem = False, f"{type(e).__name__}: {e}"
    return scenario, seed, ok, problem, time.perf_counter() - started


@dataclass(frozen=True)
class SeedFailure:
    scenario: str
    seed: int
    problem: str
    replay: str

    def __str__(self) -> str:
        return f"[{self.scenario}] seed {self.seed}: {self.problem}\n    replay: {self.replay}"


@dataclass
class ScenarioStats:
    runs: int = 0
    failures: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Failed runs / runs (0.0 when nothing ran)."""
        return self.failures / self.runs if self.runs else 0.0


@dataclass
class SeedReport:
    target: str
    stats: dict = field(default_factory=dict)          # scenario -> ScenarioStats
    failures: list = field(default_factory=list)       # SeedFailure, by scenario then seed
    seconds: float = 0.0
    workers: int = 1

    @property
    def runs(self) -> int:
        return sum(s.runs for s in self.stats.values())

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures

    def rate(self, scenario: Optional[str] = None) -> float:
        if scenario is not None:
            return self.stats[scenario].rate
        return self.failed / self.runs if self.runs else 0.0

    def text(self) -> str:
        lines = [f"{self.target}: {self.runs} runs on {self.workers} worker(s) in {self.seconds:.1f} s, "
                 f"{self.failed} failed ({100 * self.rate():.1f} %)"]
        for name, s in self.stats.items():
            lines.append(f"  {name}: {s.failures}/{s.runs} failed ({100 * s.rate:.1f} %), "
                         f"{s.seconds / max(1, s.runs):.2f} s per run")
        lines += [str(f) for f in self.failures]
        return "\n".join(lines)


def replay_command(target: str, seed: int, scenario: str = "default", kwargs: Optional[dict] = None) -> str:
    """The one-line shell command that re-runs ``seed`` alone."""
    mod = target.split(":")[0]
    if not kwargs:
        own = getattr(importlib.import_module(mod), "replay_command", None)
        if callable(own):
            try:
                return own(seed)
            except TypeError:
                pass
    cmd = f"python -m course_lib.check.seeds {target} --seed {seed}"
    if kwargs:
        cmd += f" --kwargs {shlex.quote(json.dumps(kwargs, sort_keys=True))}"
    return cmd


def _progress_bar(total: int, progress):
    """A callable (done, failures) -> None, and a closer."""
    if callable(progress):
        return (lambda done, failed: progress(done, total, failed)), (lambda: None)
    if not progress:
        return (lambda done, failed: None), (lambda: None)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, unit="run", file=sys.stderr)

        def update(done, failed):
            bar.n = done
            bar.set_postfix(failed=failed, refresh=False)
            bar.refresh()
        return update, bar.close
    last = [0.0]

    def line(done, failed):
        now = time.monotonic()
        if done == total or now - last[0] > 0.5:
            last[0] = now
            sys.stderr.write(f"\r{done}/{total} runs, {failed} failed")
            sys.stderr.flush()
    return line, (lambda: sys.stderr.write("\n"))


def run_seeds(target: str, seeds: Iterable[int], *, scenarios: Optional[dict] = None,
              workers: Optional[int] = None, progress: Union[bool, Callable] = True) -> SeedReport:
    """Run ``target(seed, **kwargs)`` for every seed and every ``scenarios`` entry
    (``name -> kwargs``; default ``{"default": {}}``) on ``workers`` processes (default:
    the CPU count; 1: in this process, no pool)."""
    resolve(target)                                  # fail here, not in every worker
    seeds = list(seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError("seeds must be ints")
    scenarios = {"default": {}} if scenarios is None else dict(scenarios)
    if not scenarios or not all(isinstance(k, dict) for k in scenarios.values()):
        raise ValueError(f"scenarios must map names to kwargs dicts, got {scenarios!r}")
    if workers is None:
        import os
        workers = max(1, os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    jobs = [(target, name, kw, s) for name, kw in scenarios.items() for s in seeds]
    report = SeedReport(target, {name: ScenarioStats() for name in scenarios}, workers=workers)
    update, close = _progress_bar(len(jobs), progress)
    started = time.perf_counter()
    raw = []
    try:
        if workers == 1:
            for job in jobs:
                raw.append(_run_one(*job))
                update(len(raw), sum(1 for r in raw if not r[2]))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_run_one, *job) for job in jobs]
                for fut in as_completed(futures):
                    raw.append(fut.result())
                    update(len(raw), sum(1 for r in raw if not r[2]))
    finally:
        close()
    report.seconds = time.perf_counter() - started
    for name, seed, ok, problem, secs in sorted(raw, key=lambda r: (list(scenarios).index(r[0]), r[1])):
        st = report.stats[name]
        st.runs += 1
        st.seconds += secs
        if not ok:
            st.failures += 1
            report.failures.append(SeedFailure(name, seed, problem,
                                               replay_command(target, seed, name, scenarios[name])))
    return report


def demo_flaky(seed: int, every: int = 7, crash_on: int = -1) -> bool:
    """A stand-in campaign for lessons and tests: fails on seeds divisible by ``every``
    and raises on seed ``crash_on``."""
    if seed == crash_on:
        raise RuntimeError(f"bug hit on seed {seed}")
    return seed % every != 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run many seeds of a campaign in parallel; report failures")
    ap.add_argument("target", help="module:function taking (seed, **kwargs), e.g. course_lib.raft.campaign:run_seed")
    ap.add_argument("--seeds", type=int, default=100, help="run seeds FIRST..FIRST+N-1 (default 100)")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--seed", type=int, help="run only this seed (a replay), in this process")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--kwargs", default="{}", help="JSON keyword arguments for every run")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    kwargs = json.loads(args.kwargs)
    if args.seed is not None:
        fn = resolve(args.target)
        result = fn(args.seed, **kwargs)
        ok = _ok(result)
        print(f"seed {args.seed}: {'ok' if ok else 'FAILED: ' + _problem(result)}")
        return 0 if ok else 1
    report = run_seeds(args.target, range(args.first, args.first + args.seeds),
                       scenarios={"default": kwargs}, workers=args.workers,
                       progress=not args.no_progress)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
