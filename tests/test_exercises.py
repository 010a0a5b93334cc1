"""Exercises are generated from the solutions, and on an untouched exercise every check
fails with a message saying what is missing (the solutions themselves run under nbval,
where every check must pass)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.grading import CheckFailed, expect, grade
from course_lib.grading.generate import exercise_from_solution, pairs, render, strip_code

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ["ex1_coordination_system", "ex2_consensus_protocol", "ex3_fault_tolerance",
            "ex4_monitoring_system", "ex5_testing_framework"]
PAIRS = list(pairs(ROOT))


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


def test_grade_reports_in_the_learners_terms(capsys):
    def not_written():
        raise NotImplementedError("return the leader")

    with pytest.raises(CheckFailed, match="not written yet .return the leader."):
        grade("3. Leader election", not_written)
    with pytest.raises(CheckFailed, match="✘ 1. Discovery: saw 1 instance, expected 3"):
        grade("1. Discovery", lambda: expect(False, "saw 1 instance, expected 3"))
    with pytest.raises(CheckFailed, match="your code raised KeyError"):
        grade("2. Config", lambda: {}["missing"])
    assert grade("4. Lock", lambda: "no lost update").startswith("✔ 4. Lock — no lost update")
    assert "✔ 4. Lock" in capsys.readouterr().out


def test_all_five_exercises_have_a_solution_and_an_exercise():
    assert [s.stem for s, _ in PAIRS] == EXPECTED
    assert all(e.exists() for _, e in PAIRS)


@pytest.mark.parametrize("solution, exercise", PAIRS, ids=[s.stem for s, _ in PAIRS])
def test_exercise_is_generated_from_its_solution(solution, exercise):
    expected = render(exercise_from_solution(json.loads(solution.read_text()), solution.name))
    assert exercise.read_text() == expected, (
        f"{exercise.name} is out of date: run python -m course_lib.grading.generate")
    assert "### BEGIN SOLUTION" in solution.read_text(), "a solution without solution regions"


@pytest.mark.parametrize("exercise", [e for _, e in PAIRS], ids=[e.stem for _, e in PAIRS])
def test_untouched_exercise_fails_every_check_saying_what_is_missing(exercise):
    notebook = nbformat.read(exercise, as_version=4)
    NotebookClient(notebook, timeout=120, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(exercise.parent)}}).execute()
    checks, others = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        (checks if "grade(" in cell.source else others).append((cell.source, errors))
    assert len(checks) >= 5, f"{exercise.name}: expected a check cell per sub-task"
    for source, errors in checks:
        assert errors and errors[0].ename == "CheckFailed", f"check passed untouched:\n{source}"
        assert "not written yet" in errors[0].evalue, errors[0].evalue
    for source, errors in others:
        assert not errors, f"{exercise.name}: a non-check cell failed:\n{source}\n{errors[0].evalue}"
