"""Grading of the exercises: check cells that run real tests on the learner's code.

An exercise notebook alternates cells the learner fills in (``# YOUR CODE HERE``) with
check cells::

    grade("1. Service discovery", checks.service_discovery, ServiceRegistry)

``grade`` runs the check function on the learner's object.  A passing check prints
``✔`` and what it verified; a failing one raises :class:`CheckFailed` whose message says
what is wrong or missing — so the cell shows red with a sentence, not a bare traceback
from deep inside the checker.  Code still marked ``raise NotImplementedError`` is
reported as "not written yet".

The solutions (``solutions/``) are the source: ``python -m course_lib.grading.generate``
cuts every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` out of them to
make ``exercises/``, and a test checks that the two never drift apart.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

import nbformat

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


class CheckFailed(AssertionError):
    """A check did not pass; the message says why, in the learner's terms."""


def grade(title: str, check: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    """Run ``check(*args, **kwargs)``; print ``✔ title — what it verified`` and return
    that summary, or raise ``CheckFailed`` naming the problem."""
    began = time.monotonic()
    try:
        summary = check(*args, **kwargs)
    except CheckFailed as failure:
        raise CheckFailed(f"✘ {title}: {failure}") from None
    except NotImplementedError as missing:
        where = f" ({missing})" if str(missing) else ""
        raise CheckFailed(f"✘ {title}: not written yet{where} — fill in the cells marked "
                          "# YOUR CODE HERE above, then run this check again.") from None
    except Exception as error:  # the learner's code raised: say where, briefly
        frame = traceback.extract_tb(error.__traceback__)[-1]
        raise CheckFailed(f"✘ {title}: your code raised {type(error).__name__}: {error} "
                          f"(at line {frame.lineno}: {frame.line})") from error
    text = f"✔ {title} — {summary} ({time.monotonic() - began:.1f} s)"
    print(text)
    return text


def expect(condition: bool, message: str) -> None:
    """Inside a check: ``CheckFailed(message)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


def load_solution(name: str, skip: Iterable[str] = ("grade(",)) -> dict:
    """Run the code cells of ``solutions/<name>.ipynb`` (all but those containing one of
    ``skip``, by default the check cells) and return their namespace: the worked
    answers, for tests that check the checkers."""
    path = SOLUTIONS / f"{name}.ipynb"
    if not path.exists():
        raise ValueError(f"no solution notebook {path}")
    skip = tuple(skip)
    namespace: dict = {"__name__": f"solution_{name}"}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and not any(marker in cell.source for marker in skip):
            exec(compile(cell.source, str(path), "exec"), namespace)
    return namespace
