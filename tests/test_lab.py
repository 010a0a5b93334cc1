"""course_lib.lab: the JupyterLab the course starts, and what it saves."""

from __future__ import annotations

import json
import sys

import pytest

from course_lib.lab import (HOOK, ROOT, START_NOTEBOOK, install_config, is_course_notebook,
                            lab_command)


def contents_manager(root):
    """Jupyter server's own file contents manager over ``root``, with the course's hook."""
    from jupyter_server.services.contents.filemanager import FileContentsManager
    return FileContentsManager(root_dir=str(root), pre_save_hook=HOOK)


def notebook_with_outputs():
    return {"metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                         "language_info": {"name": "python", "version": "3.11.7"},
                         "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
            "nbformat": 4, "nbformat_minor": 5,
            "cells": [{"cell_type": "code", "execution_count": 7, "id": "a", "metadata": {},
                       "source": "answer = 42", "outputs": [{"output_type": "stream", "name": "stdout", "text": "42"}]}]}


@pytest.mark.parametrize("path, expected", [
    ("notebooks/02_1_raft.ipynb", True), ("/exercises/ex1_coordination_system.ipynb", True),
    ("solutions/ex2_consensus_protocol.ipynb", True), ("mine/scratch.ipynb", False),
    ("notebooks/deeper/x.ipynb", False), ("notebooks/README.md", False), ("Untitled.ipynb", False),
])
def test_only_the_courses_own_notebooks_are_stripped(path, expected):
    assert is_course_notebook(path) is expected


def test_a_saved_lesson_keeps_code_and_committed_metadata_and_loses_outputs(tmp_path):
    (tmp_path / "exercises").mkdir()
    committed = {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                 "language_info": {"name": "python"}}
    (tmp_path / "exercises" / "ex1.ipynb").write_text(json.dumps(
        {"metadata": committed, "nbformat": 4, "nbformat_minor": 5, "cells": []}))
    contents_manager(tmp_path).save({"type": "notebook", "format": "json",
                                     "content": notebook_with_outputs()}, "exercises/ex1.ipynb")
    saved = json.loads((tmp_path / "exercises" / "ex1.ipynb").read_text())
    cell = saved["cells"][0]
    assert "".join(cell["source"]) == "answer = 42", "the learner's code is saved"
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert saved["metadata"] == committed


def test_a_learners_own_notebook_is_saved_untouched(tmp_path):
    contents_manager(tmp_path).save({"type": "notebook", "format": "json",
                                     "content": notebook_with_outputs()}, "mine.ipynb")
    saved = json.loads((tmp_path / "mine.ipynb").read_text())
    assert saved["cells"][0]["outputs"] and saved["metadata"]["widgets"]


def test_install_config_merges_with_what_is_there(tmp_path):
    config = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"ServerApp": {"port": 9999}}))
    assert install_config(tmp_path) == config
    assert install_config(tmp_path) == config   # twice: still one hook, nothing lost
    saved = json.loads(config.read_text())
    assert saved == {"ServerApp": {"port": 9999}, "ContentsManager": {"pre_save_hook": HOOK}}
    overrides = json.loads((tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_install_config_refuses_a_broken_config_and_says_which(tmp_path):
    config = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    config.parent.mkdir(parents=True)
    config.write_text("{not json")
    with pytest.raises(ValueError, match="jupyter_server_config.json is not valid JSON"):
        install_config(tmp_path)
    assert config.read_text() == "{not json", "nothing is overwritten"


def test_the_lab_command_serves_the_repository_and_opens_start_here():
    command = lab_command(extra=["--port=8890"])
    assert command[:4] == [sys.executable, "-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={ROOT}" in command
    assert f"--LabApp.default_url=/lab/tree/{START_NOTEBOOK}" in command
    assert command[-1] == "--port=8890", "the learner's flags come last, so they win"
    assert (ROOT / START_NOTEBOOK).exists()
