"""Exercises are generated from the solutions, and on an untouched exercise every check
fails with a message saying what is missing — shown as the cell's output, never raised —
and the summary says none pass (the solutions themselves run under nbval, where their
last cell fails unless every check passed).

A learner's saved answers never break these tests: the untouched exercise is generated
afresh from its solution, and the exercise on disk may differ from it as long as git's
staged copy does not."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib import grading
from course_lib.grading import (CheckFailed, assert_all_passed, expect, grade, is_grading_cell,
                                results, run_check, summary, summary_text)
from course_lib.grading.generate import exercise_from_solution, pairs, render, strip_code

from .git_copies import staged_copy

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ["ex1_coordination_system", "ex2_consensus_protocol", "ex3_fault_tolerance",
            "ex4_monitoring_system", "ex5_testing_framework"]
PAIRS = list(pairs(ROOT))
IDS = [s.stem for s, _ in PAIRS]


def generated(solution: Path) -> str:
    return render(exercise_from_solution(json.loads(solution.read_text(encoding="utf-8")),
                                         solution.name))


@pytest.fixture
def empty_registry():
    saved = dict(grading._RESULTS)
    grading.clear_results()
    yield
    grading.clear_results()
    grading._RESULTS.update(saved)


def test_strip_code_keeps_indentation_and_hint():
    source = "def f(x):\n    ### BEGIN SOLUTION return x squared\n    return x * x\n    ### END SOLUTION\n"
    assert strip_code(source) == ('def f(x):\n    # YOUR CODE HERE\n'
                                  '    raise NotImplementedError("return x squared")\n')


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the region"),
])
def test_strip_code_rejects_broken_markers(source, problem):
    with pytest.raises(ValueError, match=problem):
        strip_code(source)


def test_markdown_answers_are_cut_too():
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {},
                           "source": "Why?\n<!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->"}]}
    assert exercise_from_solution(notebook)["cells"][0]["source"] == "Why?\n*Your answer here.*"


def test_solution_only_cells_are_dropped_from_the_exercise():
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 3,
              "source": source} for source in
             ("summary(expected=5)", ["### SOLUTION ONLY: why\n", "assert_all_passed(expected=5)"])]
    exercise = exercise_from_solution({"cells": cells})
    assert [c["source"] for c in exercise["cells"]] == ["summary(expected=5)"]
    assert exercise["cells"][0]["execution_count"] is None
    assert len(cells) == 2, "the solution itself is left alone"


def test_run_check_reports_in_the_learners_terms():
    def not_written():
        raise NotImplementedError("return the leader")

    missing = run_check("3. Leader election", not_written)
    assert not missing.passed and missing.title == "3. Leader election"
    assert missing.message.startswith("✘ 3. Leader election: not written yet (return the leader)")
    with pytest.raises(CheckFailed, match="not written yet .return the leader."):
        missing.raise_for_failure()
    wrong = run_check("1. Discovery", lambda: expect(False, "saw 1 instance, expected 3"))
    assert wrong.message == "✘ 1. Discovery: saw 1 instance, expected 3"
    assert wrong.detail == "saw 1 instance, expected 3" and wrong.error is None
    ok = run_check("4. Lock", lambda: "no lost update")
    assert ok.passed and ok.message.startswith("✔ 4. Lock — no lost update (")
    assert ok.raise_for_failure() is ok and ok.seconds >= 0


def test_an_exception_in_the_learners_code_names_it_and_their_line():
    def parse(text):
        return json.loads(text)  # the learner's line

    raised = run_check("2. Config", lambda: parse("{"))
    assert not raised.passed and isinstance(raised.error, json.JSONDecodeError)
    assert "your code raised JSONDecodeError: Expecting property name" in raised.message
    # the learner's line, not the innermost frame in the standard library's json module
    assert "return json.loads(text)  # the learner's line" in raised.message, raised.message
    assert "Traceback" not in raised.message


def test_grade_shows_the_message_without_raising_and_records_it(capsys, empty_registry):
    grade("1. Discovery", lambda: expect(False, "saw 1 instance, expected 3"))
    grade("2. Config", lambda: "compare-and-set holds")
    assert capsys.readouterr().out.startswith("✘ 1. Discovery: saw 1 instance, expected 3\n✔ 2. Config")
    assert [(r.title, r.passed) for r in results()] == [("1. Discovery", False), ("2. Config", True)]
    grade("1. Discovery", lambda: "3 instances")  # re-run: the entry is replaced, in place
    assert [(r.title, r.passed) for r in results()] == [("1. Discovery", True), ("2. Config", True)]
    assert summary_text(expected=3).startswith("2 of 3 checks pass (1 not run yet)\n  ✔ 1. Discovery")
    capsys.readouterr()
    summary()
    assert capsys.readouterr().out.startswith("2 of 2 checks pass\n")


def test_grade_in_a_kernel_shows_html_with_a_plain_text_copy(monkeypatch, empty_registry):
    shown = []

    def display(data, raw=False):
        assert raw
        shown.append(data)

    monkeypatch.setattr("IPython.get_ipython", lambda: object())  # as if in a kernel
    monkeypatch.setattr("IPython.display.display", display)
    grade("1. Discovery", lambda: expect(False, "saw <1> instance"))
    summary(expected=2)
    check, table = shown
    assert check["text/plain"] == "✘ 1. Discovery: saw <1> instance"
    assert "✘</span> 1. Discovery: saw &lt;1&gt; instance</div>" in check["text/html"]
    assert table["text/plain"].startswith("0 of 2 checks pass (1 not run yet)")
    assert "<b>0 of 2 checks pass (1 not run yet)</b><table" in table["text/html"]


def test_assert_all_passed_names_the_failing_checks(empty_registry):
    grade("1. A", lambda: "fine")
    grade("2. B", lambda: expect(False, "wrong"))
    with pytest.raises(AssertionError, match=r"^2 of 3 checks ran, 1 failed: ✘ 2. B: wrong$"):
        assert_all_passed(expected=3)
    grade("2. B", lambda: "fine")
    with pytest.raises(AssertionError, match=r"^2 of 3 checks ran$"):
        assert_all_passed(expected=3)
    assert_all_passed(expected=2)


def test_grading_cells_are_recognised():
    assert is_grading_cell('grade("1. X", ex1.x, X)') and is_grading_cell("summary(expected=5)")
    assert is_grading_cell("### SOLUTION ONLY\nassert_all_passed(expected=5)")
    assert not is_grading_cell("def performance_summary(history):\n    return summary(history)")


def test_all_five_exercises_have_a_solution_and_an_exercise():
    assert [s.stem for s, _ in PAIRS] == EXPECTED
    assert all(e.exists() for _, e in PAIRS)


@pytest.mark.parametrize("solution, exercise", PAIRS, ids=IDS)
def test_exercise_is_generated_from_its_solution(solution, exercise):
    """The working copy, or git's staged copy (a learner's saved answers change only the
    working copy), is the exercise the solution generates."""
    assert "### BEGIN SOLUTION" in solution.read_text(encoding="utf-8"), \
        "a solution without solution regions"
    expected = json.loads(generated(solution))
    copies = {"the working copy": exercise.read_text(encoding="utf-8")}
    staged = staged_copy(exercise)
    if staged is not None:
        copies["git's staged copy"] = staged
    assert any(json.loads(text) == expected for text in copies.values()), (
        f"exercises/{exercise.name}: neither {' nor '.join(copies)} is what "
        f"solutions/{solution.name} generates: run `python -m course_lib.grading.generate` "
        f"(it overwrites exercises/{exercise.name}), then `git add exercises/{exercise.name}`")


@pytest.mark.parametrize("solution", [s for s, _ in PAIRS], ids=IDS)
def test_render_is_what_jupyterlab_saves(solution):
    """``render`` writes what nbformat (so JupyterLab's server) writes; that a save in
    JupyterLab then leaves the file byte-identical is checked for every notebook in
    test_notebooks_clean."""
    notebook = exercise_from_solution(json.loads(solution.read_text(encoding="utf-8")))
    assert generated(solution) == nbformat.writes(nbformat.from_dict(notebook)) + "\n"


@pytest.mark.parametrize("solution", [s for s, _ in PAIRS], ids=IDS)
def test_untouched_exercise_fails_every_check_saying_what_is_missing(solution):
    """The exercise generated from the solution (not the working copy, which may hold a
    learner's answers), run top to bottom: no cell errs, every check shows "not written
    yet", and the summary says none pass."""
    notebook = nbformat.reads(generated(solution), as_version=4)
    NotebookClient(notebook, timeout=120, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
    checks, summaries = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (f"{solution.name}: a cell raised {errors[0].ename}: "
                            f"{errors[0].evalue}\n{cell.source}")
        shown = [o.data for o in cell.outputs if o.output_type == "display_data"]
        if cell.source.startswith("grade("):
            checks.append((cell.source, shown))
        elif "summary(" in cell.source and is_grading_cell(cell.source):
            summaries.append(shown)
    expected = check_cells(solution)
    assert len(checks) == expected >= 5, f"{solution.name}: expected a check cell per sub-task"
    for source, shown in checks:
        assert len(shown) == 1, f"one result per check cell:\n{source}\n{shown}"
        plain, rich = shown[0]["text/plain"], shown[0]["text/html"]
        assert plain.startswith("✘ ") and "not written yet" in plain, f"{source}\n{plain}"
        assert "✘" in rich and "not written yet" in rich, rich
    assert len(summaries) == 1 and notebook.cells[-1].source == solution_summary(solution), \
        "the exercise ends with its summary cell"
    assert summaries[0][0]["text/plain"].startswith(f"0 of {expected} checks pass\n"), summaries[0]
    assert f"0 of {expected} checks pass" in summaries[0][0]["text/html"]


def check_cells(solution: Path) -> int:
    """How many check cells the solution has: a sub-task each (five), plus any extra
    check (exercise 2's run on real processes)."""
    return sum(c.cell_type == "code" and c.source.startswith("grade(")
               for c in nbformat.read(solution, as_version=4).cells)


def solution_summary(solution: Path) -> str:
    return next(c.source for c in nbformat.read(solution, as_version=4).cells
                if c.source.startswith("# Which checks pass"))


@pytest.mark.parametrize("solution", [s for s, _ in PAIRS], ids=IDS)
def test_solution_ends_with_its_summary_and_the_assertion_that_every_check_passed(solution):
    cells = nbformat.read(solution, as_version=4).cells
    n = check_cells(solution)
    assert n >= 5, f"{solution.name}: expected a check cell per sub-task"
    assert cells[-2].source.startswith("# Which checks pass") and f"summary(expected={n})" in cells[-2].source
    assert cells[-1].source.startswith("### SOLUTION ONLY")
    assert f"assert_all_passed(expected={n})" in cells[-1].source
