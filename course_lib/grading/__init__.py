"""Grading of the exercises: check cells that run real tests on the learner's code.

An exercise notebook alternates cells the learner fills in (``# YOUR CODE HERE``) with
check cells, and ends with a summary cell::

    grade("1. Service discovery", checks.service_discovery, ServiceRegistry)
    ...
    summary(expected=5)

:func:`grade` runs the check function on the learner's object and shows the result as
the cell's output — an HTML line with a green ``✔`` and what the check verified, or a
red ``✘`` and a sentence saying what is wrong or missing, each with a ``text/plain``
copy of the same words.  It never raises: the learner sees their message, not a
traceback of the grading code, and Run All runs every check cell.  Code still marked
``raise NotImplementedError`` is reported as "not written yet"; when the learner's own
code raised, the message names the exception and the learner's line.

Every :func:`grade` records its :class:`CheckResult` (title, passed, message, seconds)
in a registry kept for the kernel, keyed by title: re-running a check replaces its
entry.  :func:`summary` shows the registry as a table ("3 of 5 checks pass");
:func:`results` returns it, :func:`clear_results` empties it.

For code (the tests of the checkers), :func:`run_check` runs a check the same way and
returns the :class:`CheckResult` without showing or recording it;
``run_check(...).raise_for_failure()`` raises :class:`CheckFailed` with the learner's
message.  A solution notebook, where every check must pass, ends with a cell (absent
from the exercise) calling :func:`assert_all_passed`, so that nbval fails a solution
whose checks fail, naming them.

The solutions (``solutions/``) are the source: ``python -m course_lib.grading.generate``
cuts every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` out of them to
make ``exercises/``, and a test checks that the two never drift apart.
"""

from __future__ import annotations

import html
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import nbformat

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
COURSE_LIB = Path(__file__).resolve().parents[1]
# First line of a cell kept in the solution only (see course_lib.grading.generate).
SOLUTION_ONLY = "### SOLUTION ONLY"
# Check and summary cells: a top-level call of grade / summary / assert_all_passed.
GRADING_CALL = re.compile(r"^(grade|summary|assert_all_passed)\(", re.MULTILINE)

PASS_COLOUR, FAIL_COLOUR = "#2e7d32", "#c62828"


class CheckFailed(AssertionError):
    """A check did not pass; the message says why, in the learner's terms."""


@dataclass(frozen=True)
class CheckResult:
    """One run of one check.  ``message`` is the line the learner sees
    (``✔ title — summary (0.3 s)`` or ``✘ title: what is wrong``); ``detail`` is that
    line without the mark and title; ``error`` is the learner's exception, if theirs
    raised."""

    title: str
    passed: bool
    message: str
    seconds: float
    detail: str = ""
    error: Optional[BaseException] = None

    def __str__(self) -> str:
        return self.message

    def raise_for_failure(self) -> "CheckResult":
        """``self`` if the check passed, else raise ``CheckFailed(self.message)``."""
        if not self.passed:
            raise CheckFailed(self.message) from self.error
        return self

    def _repr_html_(self) -> str:
        mark, colour = ("✔", PASS_COLOUR) if self.passed else ("✘", FAIL_COLOUR)
        rest = self.message[len(mark):].lstrip()
        return (f'<div class="course-check" style="white-space: pre-wrap; padding: 2px 0">'
                f'<span style="color: {colour}; font-weight: bold">{mark}</span> '
                f'{html.escape(rest)}</div>')


_RESULTS: dict[str, CheckResult] = {}


def run_check(title: str, check: Callable[..., str], *args: Any, **kwargs: Any) -> CheckResult:
    """Run ``check(*args, **kwargs)`` and return its :class:`CheckResult`; shows and
    records nothing, and raises only what is not an ``Exception`` (``KeyboardInterrupt``)."""
    began = time.monotonic()

    def failed(detail: str, error: Optional[BaseException] = None) -> CheckResult:
        return CheckResult(title, False, f"✘ {title}: {detail}", time.monotonic() - began,
                           detail, error)

    try:
        summary_text = check(*args, **kwargs)
    except CheckFailed as failure:
        return failed(str(failure))
    except NotImplementedError as missing:
        where = f" ({missing})" if str(missing) else ""
        return failed(f"not written yet{where} — fill in the cells marked # YOUR CODE HERE "
                      "above, then run this check again.")
    except Exception as error:  # the learner's code raised: say what and where, briefly
        return failed(f"your code raised {type(error).__name__}: {error} "
                      f"({_where(error)})", error)
    seconds = time.monotonic() - began
    return CheckResult(title, True, f"✔ {title} — {summary_text} ({seconds:.1f} s)", seconds,
                       str(summary_text))


def _where(error: BaseException) -> str:
    """``at line N: <code>`` of the innermost frame that is the learner's: not the
    course library's and not an installed package's or the standard library's (the
    innermost frame of all if none is)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "at an unknown line"
    library = tuple({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix,
                                                      sys.exec_prefix)} | {str(COURSE_LIB)})
    theirs = [f for f in frames if not str(Path(f.filename).resolve()).startswith(library)]
    frame = (theirs or frames)[-1]
    return f"at line {frame.lineno}: {frame.line}" if frame.line else f"at line {frame.lineno}"


def grade(title: str, check: Callable[..., str], *args: Any, **kwargs: Any) -> None:
    """Run ``check(*args, **kwargs)`` (see :func:`run_check`), record the result under
    ``title`` and show it as the cell's output.  Never raises for a failed check."""
    result = run_check(title, check, *args, **kwargs)
    _RESULTS[title] = result  # a re-run replaces the entry, keeping its place
    _show(result._repr_html_(), result.message)


def results() -> list[CheckResult]:
    """The latest result of every check graded in this kernel, in the order they first ran."""
    return list(_RESULTS.values())


def clear_results() -> None:
    _RESULTS.clear()


def summary_text(expected: Optional[int] = None) -> str:
    """The summary as plain text: ``3 of 5 checks pass`` and a line per check."""
    done = results()
    total = max(expected or 0, len(done))
    passing = sum(r.passed for r in done)
    head = f"{passing} of {total} check{'' if total == 1 else 's'} pass"
    if len(done) < total:
        head += f" ({total - len(done)} not run yet)"
    return "\n".join([head] + [f"  {r.message}" for r in done])


def summary(expected: Optional[int] = None) -> None:
    """Show a table of the checks graded in this kernel (HTML, and plain text): which
    pass, which fail and why.  ``expected``: how many check cells the notebook has, so
    that checks not run yet count as not passing."""
    text = summary_text(expected)
    head = text.split("\n", 1)[0]
    rows = []
    for r in results():
        mark, colour = ("✔", PASS_COLOUR) if r.passed else ("✘", FAIL_COLOUR)
        rows.append(f'<tr><td style="color: {colour}; font-weight: bold">{mark}</td>'
                    f'<td style="text-align: left">{html.escape(r.title)}</td>'
                    f'<td style="text-align: left; white-space: pre-wrap">{html.escape(r.detail)}</td>'
                    f'<td style="text-align: right">{r.seconds:.1f} s</td></tr>')
    table = ("<table class=\"course-summary\"><thead><tr><th></th><th style=\"text-align: left\">"
             "check</th><th style=\"text-align: left\">result</th><th>time</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else ""
    _show(f"<div><b>{html.escape(head)}</b>{table}</div>", text)


def assert_all_passed(expected: int) -> None:
    """``AssertionError`` naming the failing checks unless ``expected`` checks ran in
    this kernel and all passed (the last cell of a solution notebook)."""
    done = results()
    failing = [r for r in done if not r.passed]
    if failing or len(done) != expected:
        problems = [f"{len(done)} of {expected} checks ran"] if len(done) != expected else []
        if failing:
            problems.append(f"{len(failing)} failed: "
                            + "; ".join(r.message for r in failing))
        raise AssertionError(", ".join(problems))


def _show(html_text: str, plain_text: str) -> None:
    """Show rich output in IPython (HTML, with the same words as text/plain), else print."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is installed with ipykernel
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(plain_text)
        return
    display({"text/html": html_text, "text/plain": plain_text}, raw=True)


def expect(condition: bool, message: str) -> None:
    """Inside a check: ``CheckFailed(message)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


def is_grading_cell(source: str) -> bool:
    """A check cell, a summary cell, or a solution-only cell."""
    return source.lstrip().startswith(SOLUTION_ONLY) or bool(GRADING_CALL.search(source))


def load_solution(name: str, skip: Iterable[str] = ()) -> dict:
    """Run the code cells of ``solutions/<name>.ipynb`` — all but the grading cells
    (:func:`is_grading_cell`) and those containing one of ``skip`` — and return their
    namespace: the worked answers, for tests that check the checkers."""
    path = SOLUTIONS / f"{name}.ipynb"
    if not path.exists():
        raise ValueError(f"no solution notebook {path}")
    skip = tuple(skip)
    namespace: dict = {"__name__": f"solution_{name}"}
    for cell in nbformat.read(path, as_version=4).cells:
        if (cell.cell_type == "code" and not is_grading_cell(cell.source)
                and not any(marker in cell.source for marker in skip)):
            exec(compile(cell.source, str(path), "exec"), namespace)
    return namespace
