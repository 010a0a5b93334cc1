"""Test session set-up (for tests/, notebooks/ and solutions/ alike): a real ZooKeeper
ensemble of the tests' own.

The session starts a 3-server ensemble in a temporary folder on free ports (from 22181
on) and points the course at it (``COURSE_ZK_DIR`` / ``COURSE_ZK_PORT``), so library
tests and notebook kernels (which inherit the environment) use it, never a learner's
ensemble.  Tests that kill servers get an ensemble of their own (``private_ensemble``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from course_lib.zk import Ensemble, ZooKeeperError, free_base_port


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller started the ensemble, env is inherited
    os.environ.pop("ZK_HOSTS", None)
    folder = tempfile.mkdtemp(prefix="course-zk-tests-")
    # Two pytest sessions starting at once could both find the same ports free: start
    # each search at a place of its own, and move on if the ports were taken meanwhile.
    for attempt in range(3):
        port = free_base_port(3, start=22181 + 10 * ((os.getpid() + attempt * 17) % 80))
        ensemble = Ensemble(3, base_dir=folder, base_port=port)
        try:
            ensemble.start()
            break
        except ZooKeeperError:
            ensemble.stop()
            if attempt == 2:
                raise
    os.environ["COURSE_ZK_DIR"] = folder
    os.environ["COURSE_ZK_PORT"] = str(port)
    config._course_zk = ensemble
    _stop_on_sigterm(ensemble)


def _stop_on_sigterm(ensemble: Ensemble) -> None:
    """A test run ended by SIGTERM (a timeout, a CI runner) stops its JVMs too."""
    def handler(signum, frame):
        ensemble.stop()
        shutil.rmtree(ensemble.base_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def pytest_unconfigure(config):
    ensemble = getattr(config, "_course_zk", None)
    if ensemble is not None:
        ensemble.stop()
        shutil.rmtree(ensemble.base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def session_ensemble() -> Ensemble:
    """The ensemble every test shares; do not kill its servers (use private_ensemble)."""
    ensemble = Ensemble.default()
    assert ensemble.is_running(), "the test session's ensemble should be running"
    return ensemble


@pytest.fixture
def private_ensemble(tmp_path_factory):
    """A 3-server ensemble for one test that kills and restarts servers."""
    ensemble = Ensemble(3, base_dir=tmp_path_factory.mktemp("zk"),
                        base_port=free_base_port(3, start=30181 + 10 * (os.getpid() % 60)))
    ensemble.start()
    yield ensemble
    ensemble.stop()
