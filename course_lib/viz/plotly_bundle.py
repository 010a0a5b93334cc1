"""plotly's ``FigureWidget``, with its 5 MB front end loaded by URL once per page.

plotly 7's ``FigureWidget`` is an anywidget whose ``_esm`` (the ES module the browser
runs) is plotly's whole front end, ``widgetbundle.js``: 5 MB sent in every figure's
model state, turned by anywidget into a Blob URL and ``import()``-ed, so each figure
parses and evaluates it again.  anywidget gives a model 2 s to initialise; later, it
raises "[anywidget] Failed to initialize model." and drops every update sent to that
figure.  A page holding the Raft widget's three figures, or reopened while the kernel
holds a dozen, misses that on a loaded machine.

Where the course's JupyterLab started the kernel, its server extension
(:mod:`course_lib.lab.server_extension`) serves that same file and says where in
``$COURSE_PLOTLY_BUNDLE_URL`` (a URL path, ``/user/<id>/`` prefix included on Binder).
:class:`CourseFigureWidget` then sends, instead of the bundle, a stub of a few hundred
bytes that imports it by absolute URL and re-exports its default export (plotly's widget
factory, which anywidget calls once per model).  The browser's module map fetches and
evaluates one URL once per page: the first figure waits for it, every later one
initialises at once.  The browser caches the file (immutable, versioned URL).

Where the variable is absent — plain ``jupyter lab`` without the course's config, VS
Code, Colab, nbval headless — or names another plotly version than this kernel's (the
server's environment is not the kernel's), nothing changes: the bundle goes inline.

Every ``FigureWidget`` the course creates is a ``CourseFigureWidget`` (the course's
widgets build them; the notebooks never call ``go.FigureWidget``).  plotly's own class
is left as it is: a learner's ``go.FigureWidget`` behaves as plotly documents it.
"""

from __future__ import annotations

import json
import os
import warnings

import plotly
import plotly.graph_objects as go

from course_lib.lab import PLOTLY_BUNDLE_ENV, plotly_bundle_name

_WARNED: set[str] = set()


def bundle_url_path(environ=os.environ) -> str | None:
    """The URL path of plotly's widget bundle as the course's server serves it to this
    kernel, or None (send it inline): ``$COURSE_PLOTLY_BUNDLE_URL`` if it is set, is a
    URL path, and names this kernel's plotly version."""
    path = environ.get(PLOTLY_BUNDLE_ENV, "")
    if not path:
        return None
    expected = plotly_bundle_name(plotly.__version__)
    if not path.startswith("/") or not path.endswith("/" + expected):
        if path not in _WARNED:     # once per kernel, not once per figure
            _WARNED.add(path)
            warnings.warn(f"${PLOTLY_BUNDLE_ENV}={path!r} is not a URL path ending in "
                          f"/{expected} (this kernel's plotly is {plotly.__version__}): "
                          "plotly's widget bundle is sent inline", stacklevel=2)
        return None
    return path


def stub_module(url_path: str) -> str:
    """The ES module sent instead of the bundle: imports ``url_path`` resolved against
    the page's URL (a Blob module has no base URL of its own) and re-exports its default
    export.  Several lines, so that anywidget never mistakes it for a file name."""
    return (
        "// plotly's FigureWidget front end, loaded by URL once per page"
        " (course_lib.viz.plotly_bundle)\n"
        f"const url = new URL({json.dumps(url_path)}, location.href).href;\n"
        "let bundle;\n"
        "try {\n"
        "  bundle = await import(url);\n"
        "} catch (error) {\n"
        "  throw new Error(`[course_lib] plotly's widget bundle did not load from ${url} "
        "(${error}). The kernel's Jupyter server serves it at that path; is this page "
        "served by another one (a proxy, an editor)? Then start the kernel without $"
        + PLOTLY_BUNDLE_ENV + "`);\n"
        "}\n"
        "export default bundle.default;\n")


class CourseFigureWidget(go.FigureWidget):
    """plotly's ``FigureWidget``, whose browser module is the stub of :func:`stub_module`
    when the course's server serves the bundle (see the module docstring), else plotly's
    inline bundle.  Same constructor, same behaviour."""

    @property
    def _esm(self):
        # anywidget's ``AnyWidget.__init__`` reads ``self._esm`` once per instance and
        # makes it a synced trait (which then shadows this property): so each figure
        # decides from the environment when it is created.
        path = bundle_url_path()
        return super()._esm if path is None else stub_module(path)
