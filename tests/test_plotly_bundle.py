"""plotly's widget bundle by URL: the course's server extension serves it under the
server's base_url and tells its kernels where; the course's figures then send a stub
that imports it instead of 5 MB inline (course_lib.lab.server_extension,
course_lib.viz.plotly_bundle).  The browser side (the stub loads, the figures draw) is
checked by the browser suite, tests/browser."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import plotly
import plotly.graph_objects as go
import pytest

from course_lib.lab import (PLOTLY_BUNDLE_ENV, SERVER_EXTENSION, install_config,
                            plotly_bundle_path)
from course_lib.viz.frame_pacing import AckFigureWidget
from course_lib.viz.plotly_bundle import CourseFigureWidget, bundle_url_path

BUNDLE = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"
BASE_URL = "/user/course-test-1/"       # as on Binder: the server lives under a prefix
BUNDLE_PATH = f"{BASE_URL}course-lib/plotly-widgetbundle-{plotly.__version__}.js"
TOKEN = "course-bundle-tests"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real ``jupyter server`` whose only config is what :func:`install_config`
    writes into a fresh prefix, under :data:`BASE_URL`, with its own runtime folder
    (the kernels' connection files)."""

    def __init__(self, prefix: Path):
        self.prefix = prefix
        self.runtime = prefix / "runtime"
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != PLOTLY_BUNDLE_ENV}
        env.update(JUPYTER_CONFIG_PATH=str(prefix / "etc" / "jupyter"),
                   JUPYTER_RUNTIME_DIR=str(self.runtime))
        (prefix / "root").mkdir()
        command = [sys.executable, "-m", "jupyter_server", "--no-browser",
                   f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={TOKEN}",
                   f"--ServerApp.root_dir={prefix / 'root'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.log = prefix / "server.log"
        self.process = subprocess.Popen(command, stdout=open(self.log, "w"),
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log.read_text()[-3000:]}")
            try:
                self.api("GET", "api/status")
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter server did not answer:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.3)

    def get(self, path: str, headers: dict | None = None):
        """``(status, headers, body)`` of a GET of ``path`` (no token: as the page's
        ``import()`` of the bundle might)."""
        request = urllib.request.Request(self.origin + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.origin}{BASE_URL}{path}", method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=20) as answer:
            text = answer.read()
            return json.loads(text) if text else None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("course-prefix")
    install_config(prefix)
    running = Server(prefix)
    try:
        yield running
    finally:
        running.stop()


# -- the configuration ------------------------------------------------------------------

def test_install_config_enables_the_server_extension(tmp_path):
    from jupyter_server.extension.config import ExtensionConfigManager
    config_dir = tmp_path / "etc" / "jupyter"
    assert not ExtensionConfigManager(read_config_path=[str(config_dir)]).enabled(SERVER_EXTENSION)
    install_config(tmp_path)
    install_config(tmp_path)    # twice: still enabled, nothing else in the file
    manager = ExtensionConfigManager(read_config_path=[str(config_dir)])
    assert manager.enabled(SERVER_EXTENSION), "jupyter server would not load the extension"
    written = json.loads((config_dir / "jupyter_server_config.d" / f"{SERVER_EXTENSION}.json").read_text())
    assert written == {"ServerApp": {"jpserver_extensions": {SERVER_EXTENSION: True}}}


@pytest.mark.parametrize("base_url, expected", [
    ("/", "/course-lib/plotly-widgetbundle-7.1.0.js"),
    ("/user/abc/", "/user/abc/course-lib/plotly-widgetbundle-7.1.0.js"),
    ("/user/abc", "/user/abc/course-lib/plotly-widgetbundle-7.1.0.js"),
])
def test_the_bundle_path_is_under_the_base_url_and_names_the_version(base_url, expected):
    assert plotly_bundle_path(base_url, "7.1.0") == expected


def test_a_base_url_that_is_not_a_path_is_refused():
    with pytest.raises(ValueError, match="base_url must be a URL path starting with '/'"):
        plotly_bundle_path("user/abc/", "7.1.0")


# -- the server -------------------------------------------------------------------------

def test_the_server_serves_plotlys_own_bundle_under_its_base_url(server):
    status, headers, body = server.get(BUNDLE_PATH)
    assert status == 200, body[:300]
    assert body == BUNDLE.read_bytes(), "not the installed plotly's widgetbundle.js"
    assert headers["Content-Type"].startswith("text/javascript"), "a module must be JavaScript"
    cache = headers["Cache-Control"]
    assert "immutable" in cache and "public" in cache, cache
    assert int(cache.split("max-age=")[1].split(",")[0]) >= 365 * 24 * 3600, cache
    assert headers["ETag"]


def test_the_bundle_is_gzipped_for_a_browser_that_accepts_it(server):
    status, headers, body = server.get(BUNDLE_PATH, {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert len(body) < BUNDLE.stat().st_size / 2
    assert gzip.decompress(body) == BUNDLE.read_bytes()


def test_a_cached_bundle_is_revalidated_with_a_304(server):
    etag = server.get(BUNDLE_PATH)[1]["ETag"]
    status, _, body = server.get(BUNDLE_PATH, {"If-None-Match": etag})
    assert status == 304 and body == b""
    assert server.get(BUNDLE_PATH, {"If-None-Match": '"another"'})[0] == 200


def test_nothing_else_is_served_there(server):
    assert server.get(f"/course-lib/plotly-widgetbundle-{plotly.__version__}.js")[0] == 404, (
        "served outside the base_url")
    assert server.get(f"{BASE_URL}course-lib/plotly-widgetbundle-0.0.1.js")[0] == 404
    assert server.get(f"{BASE_URL}course-lib/widgetbundle.js")[0] == 404


def test_a_kernel_started_by_the_server_sends_the_stub_for_that_url(server):
    from jupyter_client import BlockingKernelClient
    kernel = server.api("POST", "api/kernels")
    client = BlockingKernelClient()
    try:
        connection = server.runtime / f"kernel-{kernel['id']}.json"
        wait = time.monotonic() + 30
        while not connection.exists() and time.monotonic() < wait:
            time.sleep(0.2)
        client.load_connection_file(str(connection))
        client.start_channels()
        client.wait_for_ready(timeout=90)
        code = ("import json, os\n"
                "from course_lib.viz.plotly_bundle import CourseFigureWidget\n"
                "esm = CourseFigureWidget().get_state()['_esm']\n"
                f"print(json.dumps([os.environ.get({PLOTLY_BUNDLE_ENV!r}), esm]))\n")
        printed = []
        reply = client.execute_interactive(code, timeout=90, output_hook=lambda msg: printed.append(
            msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        env, esm = json.loads("".join(printed))
    finally:
        client.stop_channels()
        server.api("DELETE", f"api/kernels/{kernel['id']}")
    assert env == BUNDLE_PATH, "the kernel did not inherit the server's variable"
    assert json.dumps(BUNDLE_PATH) in esm and len(esm) < 2000


# -- the kernel side --------------------------------------------------------------------

@pytest.mark.parametrize("figure_class", [CourseFigureWidget, AckFigureWidget])
def test_without_the_variable_a_figure_sends_plotlys_bundle_inline(monkeypatch, figure_class):
    monkeypatch.delenv(PLOTLY_BUNDLE_ENV, raising=False)
    assert bundle_url_path() is None
    assert figure_class().get_state()["_esm"] == BUNDLE.read_text(encoding="utf-8")


@pytest.mark.parametrize("figure_class", [CourseFigureWidget, AckFigureWidget])
def test_with_the_variable_a_figure_sends_a_stub_importing_that_url(monkeypatch, figure_class):
    monkeypatch.setenv(PLOTLY_BUNDLE_ENV, BUNDLE_PATH)
    esm = figure_class().get_state()["_esm"]
    assert len(esm) < 2000, "still the bundle"
    assert f"new URL({json.dumps(BUNDLE_PATH)}, location.href).href" in esm
    assert "await import(url)" in esm and "export default bundle.default;" in esm
    assert "\n" in esm.strip(), "one line ending in .js would be taken for a file name by anywidget"


def test_the_bundle_exports_the_default_the_stub_re_exports():
    """anywidget needs a default export, a function or an object: plotly's is the
    factory it calls once per model."""
    tail = BUNDLE.read_text(encoding="utf-8")[-20000:]
    assert " as default};" in tail and "render(" in tail and "initialize(" in tail


def test_plotlys_own_figure_widget_is_left_alone(monkeypatch):
    monkeypatch.setenv(PLOTLY_BUNDLE_ENV, BUNDLE_PATH)
    assert go.FigureWidget().get_state()["_esm"] == BUNDLE.read_text(encoding="utf-8")


@pytest.mark.parametrize("value", [
    "/course-lib/plotly-widgetbundle-0.0.1.js",          # the server's plotly is another
    f"http://example.org/course-lib/plotly-widgetbundle-{plotly.__version__}.js",
])
def test_a_variable_naming_another_bundle_sends_it_inline_and_says_so(monkeypatch, value):
    monkeypatch.setenv(PLOTLY_BUNDLE_ENV, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        esm = CourseFigureWidget().get_state()["_esm"]
        CourseFigureWidget()
    assert esm == BUNDLE.read_text(encoding="utf-8")
    said = [str(w.message) for w in caught if PLOTLY_BUNDLE_ENV in str(w.message)]
    assert len(said) == 1 and "sent inline" in said[0], said


def test_the_raft_widget_no_longer_sends_megabytes(monkeypatch):
    from course_lib.viz.raft_widget import RaftClusterWidget
    monkeypatch.setenv(PLOTLY_BUNDLE_ENV, BUNDLE_PATH)
    widget = RaftClusterWidget(5, seed=1)
    sizes = [len(figure.get_state()["_esm"]) for figure in widget.figures.values()]
    assert len(sizes) == 3 and max(sizes) < 2000, sizes
