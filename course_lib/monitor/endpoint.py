"""Monitoring real processes: serve a text exposition over HTTP, and scrape it.

``MetricsEndpoint(render)`` answers ``GET /metrics`` with ``render()`` (say, the
exercise's ``Metrics.expose``) from a daemon thread on loopback; ``scrape(url)`` fetches
it, as a Prometheus server would.  ``close()`` (or ``with``) stops the server.
"""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsEndpoint:
    """An HTTP server for ``render()`` on ``host:port`` (port 0: any free port)."""

    def __init__(self, render: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        if not callable(render):
            raise ValueError(f"render must be callable, got {render!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535], got {port!r}")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="metrics-endpoint")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> "MetricsEndpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scrape(url: str, timeout: float = 2.0) -> str:
    """The text served at ``url``."""
    if not isinstance(url, str) or not url.startswith("http://"):
        raise ValueError(f"url must be an http:// URL, got {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()
