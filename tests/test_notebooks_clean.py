"""Notebooks are committed without outputs: no stale results, no 5 MB widget bundles.

What is checked is what git holds (its staged copy, what the next commit takes): a
learner's working copy is theirs.  The course's JupyterLab saves the course's notebooks
without outputs anyway (``course_lib.lab.pre_save_hook``); a notebook saved by another
editor may carry outputs on disk without failing ``make test``, until it is staged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib.lab import strip_notebook

from .git_copies import staged_copy

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises", "solutions")
                   for p in (ROOT / folder).glob("*.ipynb"))


def outputs_in(notebook: dict) -> list[int]:
    return [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
            and (cell.get("outputs") or cell.get("execution_count") is not None)]


def test_there_are_notebooks():
    assert (ROOT / "notebooks" / "00_start_here.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_committed_without_outputs(path):
    text = staged_copy(path)
    where = "git's staged copy" if text is not None else "the working copy"
    notebook = json.loads(text if text is not None else path.read_text())
    dirty = outputs_in(notebook)
    assert not dirty, f"{path.name} ({where}): cells {dirty} have outputs; clear them before committing"
    assert "widgets" not in notebook.get("metadata", {}), f"{path.name} ({where}) stores widget state"


def test_the_save_hook_strips_what_the_check_refuses():
    notebook = {"metadata": {"widgets": {"state": {}}, "kernelspec": {"name": "python3"}},
                "cells": [{"cell_type": "code", "execution_count": 4, "metadata": {},
                           "outputs": [{"output_type": "stream", "text": "hi"}], "source": "x"},
                          {"cell_type": "markdown", "metadata": {}, "source": "# t"}]}
    assert outputs_in(notebook) == [0]
    stripped = strip_notebook(notebook)
    assert outputs_in(stripped) == [] and "widgets" not in stripped["metadata"]
    assert stripped["cells"][0]["source"] == "x" and stripped["metadata"]["kernelspec"]
    with pytest.raises(ValueError, match="expected a notebook"):
        strip_notebook({"cells": "nope"})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saving_it_in_jupyterlab_leaves_it_byte_identical(path, tmp_path):
    """Opened, run and saved through JupyterLab's server (its contents manager, with the
    course's save hook), the notebook is written back exactly as committed."""
    from jupyter_server.services.contents.filemanager import FileContentsManager

    from course_lib.lab import HOOK

    (tmp_path / path.parent.name).mkdir()
    copy = tmp_path / path.parent.name / path.name
    copy.write_bytes(path.read_bytes())
    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook=HOOK)
    api_path = f"{path.parent.name}/{path.name}"
    # what the front end gets and sends back is JSON; running the notebook adds outputs
    content = json.loads(json.dumps(manager.get(api_path, content=True)["content"]))
    for cell in content["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = 1
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    manager.save({"type": "notebook", "format": "json", "content": content}, api_path)
    assert copy.read_bytes() == path.read_bytes(), (
        f"{api_path} is not stored the way JupyterLab saves it: rewrite it with nbformat.write")
