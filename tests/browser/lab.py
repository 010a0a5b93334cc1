"""Drive the course in a real browser: JupyterLab started the way ``make lab`` starts it
(:func:`course_lib.lab.lab_command`), Debian's Chromium driven by Playwright.

Used by the browser tests (``tests/browser``) and the browser benchmark
(``benchmarks/bench_browser.py``).  The server is rooted at a temporary copy of the
course's notebook folders, so running and saving notebooks never touches the files
in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.lab import COURSE_FOLDERS, ROOT, install_config, lab_command

# Debian's chromium; COURSE_CHROMIUM points elsewhere (another OS).
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 900}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` on a free port, serving a copy of the course (see module doc)."""

    def __init__(self, root: Path | None = None, env: dict | None = None,
                 extra_args: tuple = ()):
        self._own_root = root is None
        self.extra_args = tuple(extra_args)     # more jupyter lab flags (a benchmark's variant)
        self.env = {**os.environ, **(env or {})}
        self.root = Path(tempfile.mkdtemp(prefix="course-lab-")) if root is None else Path(root)
        self.port = free_port()
        self.token = "course-browser-tests"
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "jupyter.log"

    def start(self, timeout: float = 60.0) -> "LabServer":
        if self._own_root:
            for folder in COURSE_FOLDERS:
                shutil.copytree(ROOT / folder, self.root / folder)
        install_config()
        command = lab_command(self.root, [
            "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", "--ServerApp.open_browser=False",
            *self.extra_args])
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.root, env=self.env,
                                        start_new_session=True, preexec_fn=_end_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n"
                           f"{self.log_path.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return json.loads(text) if text else None

    def url(self, path: str) -> str:
        """``path`` opened alone: ``reset`` starts from an empty workspace, so the
        notebooks opened before are not reopened (each with a kernel) beside it."""
        return f"{self.base}/lab/tree/{path}?reset&token={self.token}"

    def kernels(self) -> list[dict]:
        return self.api("GET", "/api/kernels")

    def kernel_pid(self, kernel_id: str) -> int | None:
        """The pid of the kernel process ``kernel_id`` (found by its connection file)."""
        for pid, cmdline in _processes():
            if f"kernel-{kernel_id}.json" in cmdline:
                return pid
        return None

    def shutdown_kernels(self) -> None:
        for kernel in self.kernels():
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.shutdown_kernels()
            except OSError:
                pass
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _end_with_parent() -> None:
    """In the child: SIGTERM when the test run (its parent) dies, even by SIGKILL, so
    that a killed run leaves no JupyterLab behind (it shuts its kernels down on SIGTERM)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 15, 0, 0, 0)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _processes():
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (children, their children, ...), with its
    command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = ""
                frontier.append(child)
    for child in list(found):
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            found.pop(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@contextmanager
def chromium():
    """A headless Debian Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What the page said: uncaught errors and console errors."""
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, page) -> "PageLog":
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", lambda message: message.type == "error"
                and self.console_errors.append(message.text))
        return self


class Notebook:
    """One notebook open in JupyterLab in ``page``."""

    def __init__(self, page, server: LabServer, path: str):
        self.page, self.server, self.path = page, server, path
        self.log = PageLog().attach(page)

    def open(self, timeout: float = 60.0) -> "Notebook":
        self.page.goto(self.server.url(self.path))
        self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell",
                                    timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)
        return self

    @property
    def panel(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first

    def menu(self, menu: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text=item).first.click()

    def wait_kernel_idle(self, timeout: float) -> None:
        """Until the kernel is connected and idle (the status bar says so)."""
        self.page.wait_for_function(
            """() => { const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) '
                         + '.jp-Notebook-ExecutionIndicator');
                       const bar = document.querySelector('.jp-StatusBar-Widget');
                       return s && s.getAttribute('data-status') === 'idle'
                              && bar && /\\| Idle/.test(bar.textContent); }""",
            timeout=timeout * 1000)

    def prompts(self) -> list[str]:
        return self.page.eval_on_selector_all(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt",
            "nodes => nodes.map(n => n.textContent.trim())")

    def run_all(self, timeout: float = 300.0) -> float:
        """Run > Run All Cells, then wait until no cell is queued or running; return
        the seconds it took."""
        began = time.monotonic()
        self.menu("Run", "Run All Cells")
        deadline = began + timeout
        time.sleep(1.0)
        while time.monotonic() < deadline:
            prompts = self.prompts()
            if prompts and not any("*" in p for p in prompts):
                try:
                    self.wait_kernel_idle(5)
                except Exception:
                    continue
                if not any("*" in p for p in self.prompts()):
                    return time.monotonic() - began
            time.sleep(0.5)
        raise TimeoutError(f"{self.path}: Run All did not finish within {timeout} s "
                           f"(prompts: {self.prompts()})")

    def unexecuted_cells(self) -> list[int]:
        return [i for i, p in enumerate(self.prompts()) if not any(ch.isdigit() for ch in p)]

    def tracebacks(self) -> list[str]:
        """Texts of error outputs (``application/vnd.jupyter.stderr`` tracebacks)."""
        return self.page.eval_on_selector_all(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
            "[data-mime-type='application/vnd.jupyter.stderr']",
            "nodes => nodes.filter(n => /Traceback|Error/.test(n.textContent))"
            ".map(n => n.textContent.slice(0, 2000))")

    def widget_outputs(self):
        """Output areas holding a rendered widget view (ipywidgets renders the view
        into the output as a child with class ``jupyter-widgets``)."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) "
                                 ".jp-OutputArea-output:has(> .jupyter-widgets)")

    def broken_outputs(self) -> list[str]:
        """Outputs saying a widget could not be shown (its model is gone)."""
        return self.page.eval_on_selector_all(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
            "nodes => nodes.map(n => n.textContent)"
            ".filter(t => /Error displaying widget|model not found|Loading widget/.test(t))"
            ".map(t => t.slice(0, 200))")

    def widget_problems(self) -> list[str]:
        """Every widget view that is broken or blank, in words."""
        problems = self.broken_outputs()
        outputs = self.widget_outputs()
        for index in range(outputs.count()):
            output = outputs.nth(index)
            output.scroll_into_view_if_needed()
            box = output.locator("> .jupyter-widgets").first.bounding_box()
            if not box or box["height"] < 20 or box["width"] < 50:
                problems.append(f"widget {index}: blank ({box})")
                continue
            for plot in range(output.locator(".js-plotly-plot").count()):
                figure = output.locator(".js-plotly-plot").nth(plot)
                drawn = figure.evaluate(
                    "el => el.querySelectorAll('.main-svg .trace, .main-svg .shapelayer path,"
                    " .main-svg .annotation').length")
                fbox = figure.bounding_box()
                if not drawn or not fbox or fbox["height"] < 50:
                    problems.append(f"widget {index}: plot {plot} is empty ({drawn} marks, {fbox})")
        return problems

    def widget(self, index: int) -> "WidgetView":
        return WidgetView(self, index)

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            """() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')
                      .closest('.lm-DockPanel').querySelector('.lm-TabBar-tab.lm-mod-current.jp-mod-dirty')""",
            timeout=15000)

    def screenshot(self, folder: Path, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=False)
        return target


def wait_until(predicate, timeout: float, what: str, every: float = 0.25):
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class WidgetView:
    """One rendered widget output, to click and read as a learner would."""

    def __init__(self, notebook: Notebook, index: int):
        self.notebook, self.index = notebook, index
        self.locator = notebook.widget_outputs().nth(index)
        self.locator.scroll_into_view_if_needed()

    def button(self, label: str):
        """The button labelled exactly ``label`` (icons aside)."""
        return self.locator.locator("button").filter(
            has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))

    def click(self, label: str) -> None:
        button = self.button(label)
        button.scroll_into_view_if_needed()
        button.click()

    def select(self, label: str, value: str) -> None:
        """Choose ``value`` in the dropdown described as ``label``."""
        self.locator.locator(".widget-dropdown", has_text=label).locator("select").select_option(value)

    def text(self) -> str:
        """Everything the widget shows in words: HTML and the figures' SVG text."""
        return self.locator.evaluate("el => el.textContent")

    def figure_texts(self, figure: int = 0) -> list[str]:
        return self.locator.locator(".js-plotly-plot").nth(figure).evaluate(
            "el => Array.from(el.querySelectorAll('.textpoint, .annotation-text, .gtitle, text'))"
            ".map(t => t.textContent)")

    def screenshot(self, folder: Path, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        self.locator.scroll_into_view_if_needed()
        self.locator.screenshot(path=str(target))
        return target
