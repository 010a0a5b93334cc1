"""How the course's JupyterLab is started, and what it saves.

``make lab`` (and Binder's ``start``, and the browser tests) start JupyterLab through
:func:`lab_command`: rooted at the repository, so ``notebooks/``, ``exercises/`` and
``solutions/`` are all in the file browser, and opening ``notebooks/00_start_here.ipynb``.

**Saving.**  JupyterLab autosaves the notebooks a learner has open, outputs and widget
views included.  Reopened, a widget view whose model died with the kernel shows "Error
displaying widget: model not found", and the course's notebooks stop matching what is
committed.  :func:`pre_save_hook`, installed into the environment's Jupyter server
config by :func:`install_config` (``make install``, Binder's ``postBuild``), saves the
course's own notebooks (under ``notebooks/``, ``exercises/``, ``solutions/``) with
their **code and prose only**: outputs, execution counts and widget state are dropped,
and the notebook's metadata stays as committed.  The learner's code — an exercise's
answers — is saved as written; running the notebook brings the outputs back.  Other
notebooks (a learner's own) are saved untouched.

**plotly's widget bundle, by URL.**  plotly's ``FigureWidget`` is an anywidget whose
module is plotly's whole front end (``plotly/package_data/widgetbundle.js``, 5 MB),
sent inline in every figure's model state: 15 MB over the websocket for the Raft
widget's three figures, and parsed and evaluated once per figure by the browser, which
anywidget gives 2 s per model (then "[anywidget] Failed to initialize model." and the
figure's updates are lost).  The course's server extension
(:mod:`course_lib.lab.server_extension`, enabled by :func:`install_config`) serves that
file at ``{base_url}course-lib/plotly-widgetbundle-<plotly version>.js`` and tells the
kernels it starts where (``$COURSE_PLOTLY_BUNDLE_URL``, see :func:`plotly_bundle_path`);
:class:`course_lib.viz.plotly_bundle.CourseFigureWidget` then sends a stub of a few
hundred bytes that imports it, so a page fetches and evaluates the bundle once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COURSE_FOLDERS = ("notebooks", "exercises", "solutions")
START_NOTEBOOK = "notebooks/00_start_here.ipynb"
HOOK = "course_lib.lab.pre_save_hook"
# The server extension (``ServerApp.jpserver_extensions``) is this package.
SERVER_EXTENSION = "course_lib.lab"
# Set by the server extension in the server's environment, so its kernels inherit it:
# the URL path (base_url included) of plotly's widget bundle, as the server serves it.
PLOTLY_BUNDLE_ENV = "COURSE_PLOTLY_BUNDLE_URL"


def plotly_bundle_name(plotly_version: str) -> str:
    """The bundle's file name in URLs: the version in it lets browsers cache it for good
    (another plotly is another URL)."""
    return f"plotly-widgetbundle-{plotly_version}.js"


def plotly_bundle_path(base_url: str, plotly_version: str) -> str:
    """``{base_url}course-lib/plotly-widgetbundle-<version>.js``: the URL path the server
    extension serves plotly's widget bundle at (``base_url`` is the server's, ``/`` or
    Binder's ``/user/<id>/``)."""
    if not base_url.startswith("/"):
        raise ValueError(f"base_url must be a URL path starting with '/', not {base_url!r}")
    return base_url.rstrip("/") + "/course-lib/" + plotly_bundle_name(plotly_version)


def _jupyter_server_extension_points() -> list[dict]:
    """Jupyter server's entry point: the extension's code is in its own module, so that
    a kernel importing :mod:`course_lib.lab` does not import the server."""
    return [{"module": "course_lib.lab.server_extension"}]


def is_course_notebook(api_path: str) -> bool:
    """``notebooks/x.ipynb``, ``exercises/x.ipynb``, ``solutions/x.ipynb`` (API paths
    are relative to the server's root, which is the repository or a copy of it)."""
    parts = Path(api_path.strip("/")).parts
    return len(parts) == 2 and parts[0] in COURSE_FOLDERS and parts[1].endswith(".ipynb")


def strip_notebook(content: dict, committed_metadata: dict | None = None) -> dict:
    """The notebook ``content`` (nbformat JSON as a dict) without outputs, execution
    counts or widget state; ``committed_metadata`` replaces its metadata if given."""
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise ValueError("expected a notebook: a dict with a list of cells")
    for cell in content["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    if committed_metadata is not None:
        content["metadata"] = dict(committed_metadata)
    content.get("metadata", {}).pop("widgets", None)
    return content


def pre_save_hook(model: dict, path: str, contents_manager: Any = None, **kwargs: Any) -> None:
    """Jupyter server pre-save hook (see the module docstring)."""
    if model.get("type") != "notebook" or not is_course_notebook(path):
        return
    committed = None
    if contents_manager is not None and hasattr(contents_manager, "_get_os_path"):
        on_disk = Path(contents_manager._get_os_path(path.strip("/")))
        try:
            committed = json.loads(on_disk.read_text(encoding="utf-8")).get("metadata")
        except (OSError, ValueError):
            committed = None
    strip_notebook(model.get("content"), committed)   # the JSON the browser sent, as a dict


# JupyterLab settings for the course: no news feed or update check (it would ask every
# learner, and reach for the network at every start).
LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification":
                {"fetchNews": "false", "checkForUpdates": False}}


def _merge_json(path: Path, values: dict) -> None:
    """Merge ``values`` (two levels: section -> settings) into the JSON file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        raise ValueError(f"{path} is not valid JSON; fix or remove it, then run "
                         "`python -m course_lib.lab install-config` again") from None
    for section, settings in values.items():
        current.setdefault(section, {}).update(settings)
    path.write_text(json.dumps(current, indent=2) + "\n")


def install_config(prefix: str | os.PathLike = sys.prefix) -> Path:
    """Install :func:`pre_save_hook` into the Jupyter server config of the environment
    at ``prefix`` (a venv, Binder's conda env), enable the course's server extension
    there (``jupyter_server_config.d/course_lib.lab.json``, where ``jupyter server
    extension enable --sys-prefix`` would put it), and install the course's JupyterLab
    settings into its ``overrides.json``, all merged with what is there; return the
    config."""
    config = Path(prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    _merge_json(config, {"ContentsManager": {"pre_save_hook": HOOK}})
    _merge_json(config.parent / "jupyter_server_config.d" / f"{SERVER_EXTENSION}.json",
                {"ServerApp": {"jpserver_extensions": {SERVER_EXTENSION: True}}})
    _merge_json(Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json",
                LAB_SETTINGS)
    return config


def lab_command(root: str | os.PathLike = ROOT, extra: list[str] | None = None,
                open_notebook: str = START_NOTEBOOK) -> list[str]:
    """The ``jupyter lab`` command line the course uses: served from ``root`` (the
    repository), opening ``open_notebook``; ``extra`` flags (port, token, ...) last,
    so they win.  Root needs ``--allow-root``; it is added for root."""
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={Path(root)}",
               f"--LabApp.default_url=/lab/tree/{open_notebook}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command + list(extra or [])
