"""Make ``exercises/`` from ``solutions/``: the solutions are the one source of truth.

    python -m course_lib.grading.generate           # write exercises/*.ipynb
    python -m course_lib.grading.generate --check   # exit 1 if exercises/ is out of date

In code cells, every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(markers alone on their lines, any indentation) becomes, at the same indentation::

    # YOUR CODE HERE
    raise NotImplementedError("<the marker's hint, if any>")

``### BEGIN SOLUTION hint text`` carries the hint.  In markdown cells the region between
``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` becomes ``*Your answer here.*``.
Put solution regions inside function and method bodies only: the exercise must still
run top to bottom with no error in any cell (check cells show their failure without
raising; a test runs the generated exercise).

A code cell whose first line starts with ``### SOLUTION ONLY`` is dropped from the
exercise.  Each solution ends with one: ``assert_all_passed(expected=5)``, which fails
the solution's nbval run, naming the failing checks, unless all of them passed.

Outputs and execution counts are cleared.  :func:`render` writes exactly what nbformat
(and so JupyterLab, whose server saves with ``nbformat.write``) writes — sources as
lists of lines, keys sorted, one-space indentation, a final newline — so opening and
saving an untouched exercise in JupyterLab leaves it byte-identical.  The conversion is
deterministic: ``--check`` compares the files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

from course_lib.grading import SOLUTION_ONLY

ROOT = Path(__file__).resolve().parents[2]
CODE_BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION(.*)$")
CODE_END = re.compile(r"^\s*### END SOLUTION\s*$")
MD_REGION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.DOTALL)


def strip_code(source: str, where: str = "cell") -> str:
    out: list[str] = []
    inside = None
    for number, line in enumerate(source.split("\n"), 1):
        begin = CODE_BEGIN.match(line)
        if begin and inside is None:
            indent, hint = begin.group(1), begin.group(2).strip()
            inside = number
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({json.dumps(hint)})" if hint
                       else f"{indent}raise NotImplementedError()")
        elif begin:
            raise ValueError(f"{where}: BEGIN SOLUTION at line {number} inside the region "
                             f"opened at line {inside}")
        elif CODE_END.match(line):
            if inside is None:
                raise ValueError(f"{where}: END SOLUTION at line {number} without a BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{where}: BEGIN SOLUTION at line {inside} is never closed")
    return "\n".join(out)


def is_solution_only(cell: dict) -> bool:
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return cell["cell_type"] == "code" and source.lstrip().startswith(SOLUTION_ONLY)


def exercise_from_solution(notebook: dict, name: str = "notebook") -> dict:
    """The exercise made from the solution ``notebook`` (nbformat JSON as a dict; not
    modified): solution regions cut, solution-only cells dropped, outputs cleared."""
    result = json.loads(json.dumps(notebook))
    result["cells"] = [cell for cell in result["cells"] if not is_solution_only(cell)]
    for index, cell in enumerate(result["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code":
            source = strip_code(source, f"{name} cell {index}")
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            source = MD_REGION.sub("*Your answer here.*", source)
        cell["source"] = source
    return result


def render(notebook: dict) -> str:
    """The file text nbformat.write (so JupyterLab's save) gives for ``notebook``."""
    text = nbformat.writes(nbformat.from_dict(notebook), version=nbformat.NO_CONVERT)
    return text if text.endswith("\n") else text + "\n"


def pairs(root: Path = ROOT):
    for solution in sorted((root / "solutions").glob("ex*.ipynb")):
        yield solution, root / "exercises" / solution.name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading.generate")
    parser.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")
    args = parser.parse_args(argv)
    stale = []
    for solution, exercise in pairs():
        text = render(exercise_from_solution(json.loads(solution.read_text(encoding="utf-8")),
                                             solution.name))
        if args.check:
            if not exercise.exists() or exercise.read_text(encoding="utf-8") != text:
                stale.append(exercise.name)
        else:
            exercise.write_text(text, encoding="utf-8")
            print(f"wrote {exercise.relative_to(ROOT)}")
    if stale:
        print("out of date (run python -m course_lib.grading.generate): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
