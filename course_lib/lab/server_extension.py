"""The course's Jupyter server extension: plotly's widget bundle served by URL.

plotly's ``FigureWidget`` front end is a 5 MB ES module that anywidget otherwise gets
inline in every figure's model state (see :mod:`course_lib.lab`).  Loaded by the server
(``ServerApp.jpserver_extensions``, written by :func:`course_lib.lab.install_config`),
this extension

- serves the installed plotly's ``package_data/widgetbundle.js`` (read from the package,
  never a copy in the repository) at ``{base_url}course-lib/plotly-widgetbundle-<plotly
  version>.js``, cacheable for a year and ``immutable`` (a new plotly is a new URL),
  gzipped when the browser accepts it (1.5 MB instead of 5 MB on Binder's network);
- sets ``$COURSE_PLOTLY_BUNDLE_URL`` to that path in the server's environment, which
  every kernel the server starts inherits: that is how a kernel learns the bundle is
  served, and where (:mod:`course_lib.viz.plotly_bundle` reads it).

The bundle is public code, like the server's ``/static/`` files, so it is served without
authentication (``@allow_unauthenticated``): the browser's ``import()`` of it then works
whatever the login (token, cookie, JupyterHub), also where the server refuses
unauthenticated access to everything else.  The route has no parameter, so nothing but
that one file can be read through it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
import threading
from concurrent.futures import Future
from pathlib import Path

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler

from course_lib.lab import PLOTLY_BUNDLE_ENV, plotly_bundle_path

# A year, as jupyter_server caches its own immutable static files: the URL names the
# version, so the file behind it never changes.
CACHE_SECONDS = 365 * 24 * 3600


def plotly_bundle_file() -> tuple[Path, str]:
    """The installed plotly's widget bundle, and plotly's version."""
    import plotly
    path = Path(plotly.__file__).resolve().parent / "package_data" / "widgetbundle.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly {plotly.__version__} has no widget bundle at {path}")
    return path, plotly.__version__


class PlotlyBundle:
    """The bundle's bytes, read once, and their gzip, made once in a thread as the
    server starts (compressing 5 MB takes a few tenths of a second: the first figure's
    request, which anywidget's 2 s include, does not wait for it)."""

    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        self.etag = '"' + hashlib.sha256(self.data).hexdigest()[:32] + '"'
        self._gzipped: Future = Future()
        threading.Thread(target=self._compress, name="course-lib-gzip", daemon=True).start()

    def _compress(self) -> None:
        try:
            self._gzipped.set_result(gzip.compress(self.data, compresslevel=6, mtime=0))
        except BaseException as error:  # handed to the request that awaits it
            self._gzipped.set_exception(error)

    async def gzipped(self) -> bytes:
        return await asyncio.wrap_future(self._gzipped)


class PlotlyBundleHandler(JupyterHandler):
    """``GET`` / ``HEAD`` the bundle (see the module docstring); ``If-None-Match`` with
    its ETag answers 304."""

    def initialize(self, bundle: PlotlyBundle) -> None:
        self.bundle = bundle

    def compute_etag(self) -> str:
        return self.bundle.etag

    @allow_unauthenticated
    async def get(self, include_body: bool = True) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", f"public, max-age={CACHE_SECONDS}, immutable")
        self.set_header("Vary", "Accept-Encoding")
        self.set_etag_header()
        if self.check_etag_header():
            self.set_status(304)
            return
        body = self.bundle.data
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            body = await self.bundle.gzipped()
        if include_body:
            self.write(body)
        else:
            self.set_header("Content-Length", len(body))

    @allow_unauthenticated
    async def head(self) -> None:
        await self.get(include_body=False)


def _load_jupyter_server_extension(serverapp) -> None:
    """Add the bundle's route under the server's ``base_url`` and publish its path in
    ``$COURSE_PLOTLY_BUNDLE_URL`` for the kernels to come.  Without a bundle (a plotly
    older than 6 has none) the server runs as usual and kernels send it inline."""
    try:
        path, version = plotly_bundle_file()
    except (ImportError, FileNotFoundError) as error:
        serverapp.log.warning("course_lib.lab: plotly's widget bundle is not served: %s", error)
        return
    url_path = plotly_bundle_path(serverapp.base_url, version)
    serverapp.web_app.add_handlers(".*$", [
        (re.escape(url_path), PlotlyBundleHandler, {"bundle": PlotlyBundle(path)})])
    os.environ[PLOTLY_BUNDLE_ENV] = url_path
    serverapp.log.info("course_lib.lab: plotly %s's widget bundle served at %s (%s=%s)",
                       version, url_path, PLOTLY_BUNDLE_ENV, url_path)
