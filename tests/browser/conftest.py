"""Fixtures of the browser suite: a ZooKeeper ensemble of its own, JupyterLab started
the way ``make lab`` starts it (on a copy of the course), and Debian's Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_lib.zk import Ensemble, free_base_port

from .lab import LabServer, chromium

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    # The lessons kill and restart servers: give the browser's kernels an ensemble of
    # their own, so nothing here disturbs the tests sharing the session's ensemble.
    ensemble = Ensemble(3, base_dir=tmp_path_factory.mktemp("browser-zk"),
                        base_port=free_base_port(3, start=40181 + 10 * (os.getpid() % 50)))
    ensemble.start()
    server = LabServer(env={"COURSE_ZK_DIR": str(ensemble.base_dir),
                            "COURSE_ZK_PORT": str(ensemble.base_port)})
    try:
        yield server.start()
    finally:
        server.stop()
        ensemble.stop()


@pytest.fixture(scope="session")
def browser():
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser):
    from .lab import VIEWPORT
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    yield page
    context.close()
