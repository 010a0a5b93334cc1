"""Every lesson and exercise, the way a learner meets it: JupyterLab in Chromium, Run All,
the widgets clicked, the notebook saved and reopened, the kernel shut down.

For each notebook: every code cell ran and no output holds a traceback; every widget is
rendered and not blank; its main controls, clicked, change what it shows; the page
raised no error; saving leaves the file exactly as committed (the course's save hook,
``course_lib.lab``) and reopening shows no broken widget; shutting the kernel down
leaves none of the processes it started.  Screenshots go to ``tests/browser/screenshots``
(git-ignored).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from course_lib.lab import ROOT

from .conftest import SCREENSHOTS
from .lab import Notebook, alive, descendants, wait_until

LESSONS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "exercises").glob("*.ipynb"))
# Processes a kernel may start that are meant to outlive it: ZooKeeper servers it restarted.
LONG_LIVED = ("QuorumPeerMain",)


# -- what a learner clicks, per notebook ------------------------------------------------

def ensemble_modes(view) -> dict[int, str]:
    """{server id: mode} as the ensemble widget's ring shows it ("2leader" ...)."""
    modes = {}
    for text in view.figure_texts():
        match = re.fullmatch(r"(\d+)\s*(leader|follower|down|starting|not serving|standalone)", text)
        if match:
            modes[int(match.group(1))] = match.group(2)
    return modes


def click_ensemble(view) -> None:
    """Kill the leader: the ring shows it down and another leader, with no Live; then
    restart it: it comes back as a follower."""
    modes = wait_until(lambda: (m := ensemble_modes(view)) and "leader" in m.values() and m,
                       20, "the ring to show a leader")
    leader = next(i for i, mode in modes.items() if mode == "leader")
    view.click(f"kill {leader}")
    after = wait_until(lambda: (m := ensemble_modes(view)).get(leader) == "down" and any(
        mode == "leader" for i, mode in m.items() if i != leader) and m, 20,
        f"the ring to show server {leader} down and a new leader")
    assert list(after.values()).count("leader") == 1
    view.click(f"restart {leader}")
    wait_until(lambda: ensemble_modes(view).get(leader) == "follower", 40,
               f"server {leader} to rejoin as a follower")


def click_znodes(view) -> None:
    """Create a znode from the form: the tree shows it."""
    view.locator.get_by_placeholder("path under the root, e.g. app/node").fill("from-the-browser")
    view.click("create")
    wait_until(lambda: "from-the-browser" in view.text(), 10, "the new znode in the tree")


def phi_line(view) -> str:
    """The phi widget's status line: "a alive · phi 0.1 <tab> b dead · phi 717.9 · suspected"."""
    return "\t".join(view.locator.locator(".widget-html").all_inner_texts())


def phi_status(view) -> dict[str, str]:
    """{node: "alive" | "dead" | "paused"} from the status line."""
    return {m.group(1): m.group(2)
            for m in re.finditer(r"(?:^|\s)([a-e]) (alive|dead|paused)\b", phi_line(view))}


def phi_shows(view, node: str, state: str, suspected: bool) -> bool:
    match = re.search(rf"(?:^|\s){node} {state} · phi [\d.e+]+(?P<suspected> · suspected)?",
                      phi_line(view))
    return bool(match) and bool(match.group("suspected")) == suspected


def click_phi(view) -> None:
    """Start; kill a node: it is suspected; pause another: suspected; resume: forgiven."""
    view.click("Start")
    living = sorted(node for node, state in phi_status(view).items() if state == "alive")
    assert len(living) >= 2, view.text()
    victim, sleeper = living[:2]
    view.select("node", victim)
    view.click("Kill (SIGKILL)" if view.button("Kill (SIGKILL)").count() else "Kill")
    wait_until(lambda: phi_shows(view, victim, "dead", True), 10, f"node {victim} dead and suspected")
    view.select("node", sleeper)
    pause = "Pause (SIGSTOP)" if view.button("Pause (SIGSTOP)").count() else "Pause node"
    view.click(pause)
    wait_until(lambda: phi_shows(view, sleeper, "paused", True), 10,
               f"node {sleeper} paused and suspected")
    view.click("Resume (SIGCONT)" if view.button("Resume (SIGCONT)").count() else "Resume node")
    wait_until(lambda: phi_shows(view, sleeper, "alive", False), 10,
               f"node {sleeper} alive and no longer suspected")
    view.click("Pause")


def raft_status(view) -> str:
    """The Raft widget's words: its message, status line and event log."""
    return "\t".join(view.locator.locator(".widget-html").all_inner_texts())


def raft_message(view) -> str:
    """The message line under the controls (the HTML just above the status line)."""
    texts = view.locator.locator(".widget-html").all_inner_texts()
    status = next((i for i, t in enumerate(texts) if t.startswith("t = ")), 0)
    return texts[status - 1] if status > 0 else ""


def raft_time(view) -> float:
    match = re.search(r"t = ([\d.]+) s", raft_status(view))
    return float(match.group(1)) if match else -1.0


def raft_leader(view) -> str:
    match = re.search(r"· leader (\S+)", raft_status(view))
    return match.group(1) if match else "none"


def playing(view) -> bool:
    return bool(re.search(r"t = [\d.]+ s ·.*· playing", raft_status(view)))


def click_raft(view) -> None:
    """Play: time runs; Kill the leader: another is elected; Partition, Heal, Client
    write: each is shown; Pause: time stops."""
    view.click("Play")
    began = wait_until(lambda: playing(view) and raft_time(view), 10, "the widget to play")
    wait_until(lambda: raft_time(view) > began + 0.05, 20, "simulated time to advance")
    leader = wait_until(lambda: (name := raft_leader(view)) != "none" and name, 30, "a leader")
    view.select("server", leader)
    view.click("Kill")
    wait_until(lambda: raft_message(view).startswith(f"killed {leader}"), 5, f"the kill of {leader} shown")
    wait_until(lambda: raft_leader(view) not in ("none", leader), 60, "a new leader")
    for label, shown in (("Partition", "partitioned the network"), ("Heal", "healed the network"),
                         ("Client write", "client writes ")):
        view.click(label)    # each message differs from the one before it
        wait_until(lambda: raft_message(view).startswith(shown), 5, f"{label!r} shown")
    view.click("Pause")
    wait_until(lambda: not playing(view) and raft_message(view) == "paused", 5, "the pause shown")
    stopped = raft_time(view)
    view.locator.page.wait_for_timeout(1000)
    assert raft_time(view) == stopped, "time runs on after Pause"


def monitor_time(view) -> float:
    return max((float(t) for t in re.findall(r"t = ([\d.]+) s", view.text())), default=-1.0)


def click_monitor(view) -> None:
    """Heal the error burst Run All left on n3: said so; Step 10 s: time moves; Play,
    then Pause: time ran, and stops."""
    view.click("Heal")
    wait_until(lambda: "healed n3" in view.text(), 10, "the heal shown")
    began = monitor_time(view)
    view.click("Step 10 s")
    wait_until(lambda: monitor_time(view) >= began + 10, 10, "the step shown")
    stepped = monitor_time(view)
    view.click("Play")
    wait_until(lambda: monitor_time(view) > stepped + 2, 20, "time to run while playing")
    view.click("Pause")
    wait_until(lambda: "paused at t = " in view.text(), 5, "the pause shown")
    stopped = monitor_time(view)
    view.locator.page.wait_for_timeout(1000)
    assert monitor_time(view) == stopped, "time runs on after Pause"


def click_raft_processes(view) -> None:
    """Play: the nodes' states are polled live; Kill the leader's process: another node
    is elected and shown; Pause: polling stops."""
    view.click("Play")
    leader = wait_until(lambda: (name := raft_leader(view)) != "none" and name, 20, "a leader")
    view.select("server", leader)
    view.click("Kill")
    wait_until(lambda: raft_message(view).startswith(f"killed {leader}"), 10, f"the kill of {leader} shown")
    wait_until(lambda: raft_leader(view) not in ("none", leader), 20, "a new leader shown")
    view.click("Restart")
    wait_until(lambda: raft_message(view).startswith(f"restarted {leader}"), 20, f"{leader} restarted")
    view.click("Pause")
    wait_until(lambda: not playing(view), 5, "the pause shown")


def click_consensus(view) -> None:
    """New run; be the network: deliver the chapter's first two messages by hand and it
    decides two values; Deliver all: Paxos decides one; Kill twice: the second refused."""
    view.click("New run")
    wait_until(lambda: "new run with seed" in (t := view.text()) and "SAFETY VIOLATED" not in t,
               10, "a new run")
    view.click("You are the network")
    wait_until(lambda: "you are the network: pick a message" in view.text(), 10, "manual mode")
    view.click("Deliver (chapter)")
    wait_until(lambda: "chapter: delivered #1" in view.text(), 10, "the first delivery")
    view.click("Deliver (chapter)")
    wait_until(lambda: "SAFETY VIOLATED: two values decided" in view.text(), 10,
               "the chapter's two decisions")
    view.click("Deliver all")
    wait_until(lambda: "one value decided" in view.text(), 10, "Paxos's one decision")
    view.click("Kill")
    wait_until(lambda: re.search(r"killed n\d", view.text()), 10, "the kill shown")
    view.click("Kill")
    wait_until(lambda: "it is already down" in view.text(), 10, "the second kill refused")


def click_recovery(view) -> None:
    """Nonsense is refused in words; kill the primary: the standby takes over, without
    Live; restart the killed server: it rejoins."""
    view.click("resume a")
    wait_until(lambda: "a is not paused" in view.text(), 10, "resume of a running server refused")
    view.click("kill primary")
    killed = wait_until(lambda: (m := re.search(r"You killed (\w+) \(SIGKILL\)", view.text()))
                        and m.group(1), 10, "the kill shown")
    other = {"a": "b", "b": "a"}[killed]
    wait_until(lambda: re.search(rf"{other} became primary \(epoch \d+\)", view.text()), 30,
               f"{other} promoted")
    view.click(f"restart {killed}")
    wait_until(lambda: f"You restarted {killed}." in view.text(), 20, f"{killed} restarted")


# How many widget views each notebook shows after Run All: a widget closed by a later
# cell, or never rendered, leaves its output empty and the count short.
WIDGETS = {"00_start_here": 2, "01_1_zookeeper_integration": 2, "01_2_distributed_locks": 1,
           "02_1_raft": 2, "02_2_consensus_protocol": 1, "02_3_raft_on_real_processes": 1,
           "03_1_failure_detection": 2, "03_2_automatic_recovery": 1, "04_2_monitoring": 1}

CONTROLS = {
    # notebook: [(index of the widget output, what to click)]
    "00_start_here": [(0, click_ensemble)],
    "01_1_zookeeper_integration": [(0, click_znodes)],
    "02_1_raft": [(0, click_raft)],
    "02_2_consensus_protocol": [(0, click_consensus)],
    "02_3_raft_on_real_processes": [(0, click_raft_processes)],
    "03_1_failure_detection": [(0, click_phi), (1, click_phi)],
    "03_2_automatic_recovery": [(0, click_recovery)],
    "04_2_monitoring": [(0, click_monitor)],
}


# -- the checks -------------------------------------------------------------------------

def run_like_a_learner(page, lab, path: str) -> Notebook:
    name = Path(path).stem
    notebook = Notebook(page, lab, path).open()
    notebook.run_all(timeout=240)
    notebook.screenshot(SCREENSHOTS, f"{name}-after-run-all")
    tracebacks = notebook.tracebacks()
    assert notebook.unexecuted_cells() == [], f"{path}: cells that did not run, after:\n{tracebacks}"
    assert tracebacks == [], f"{path}: an output holds a traceback"
    # A plot is drawn once its view has loaded plotly (5 MB): give a loaded machine time.
    try:
        wait_until(lambda: not notebook.widget_problems(), 20, "every widget drawn")
    except AssertionError:
        pass
    assert notebook.widget_problems() == [], (
        f"{path}: broken or blank widgets; page errors {notebook.log.page_errors}, "
        f"console errors {notebook.log.console_errors}")
    shown = notebook.widget_outputs().count()
    assert shown == WIDGETS.get(name, 0), f"{path}: {shown} widgets shown, expected {WIDGETS.get(name, 0)}"
    for index in range(notebook.widget_outputs().count()):
        notebook.widget(index).screenshot(SCREENSHOTS, f"{name}-widget{index}")
    return notebook


def save_and_reopen(notebook: Notebook, lab, path: str) -> None:
    notebook.save()
    saved = (lab.root / path).read_bytes()
    assert saved == (ROOT / path).read_bytes(), (
        f"{path}: saving in JupyterLab changed the file (the save hook should keep it as committed)")
    notebook.page.reload()
    notebook.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    notebook.wait_kernel_idle(60)
    time.sleep(1.0)
    assert notebook.broken_outputs() == [], f"{path}: reopened, it shows broken widgets"
    # Reopened, JupyterLab rebuilds every widget model the running kernel holds, and
    # anywidget gives each 2 s to load its module ("[anywidget] Failed to initialize
    # model." after that).  The course's figures load plotly's bundle by URL, once per
    # page (course_lib.viz.plotly_bundle), so that error fails the test like any other.


def shut_down_leaves_no_process(lab, path: str) -> None:
    sessions = [s for s in lab.api("GET", "/api/sessions") if s["path"] == path]
    assert len(sessions) == 1, f"{path}: expected one kernel session, found {sessions}"
    kernel_id = sessions[0]["kernel"]["id"]
    pid = lab.kernel_pid(kernel_id)
    assert pid is not None, f"{path}: no process for kernel {kernel_id}"
    children = {p: cmd for p, cmd in descendants(pid).items()
                if not any(mark in cmd for mark in LONG_LIVED)}
    lab.api("DELETE", f"/api/sessions/{sessions[0]['id']}")
    wait_until(lambda: not alive(pid), 20, f"kernel {pid} to exit")
    try:
        wait_until(lambda: not any(alive(p) for p in children), 20, "the kernel's processes to exit")
    except AssertionError:
        left = {p: cmd for p, cmd in children.items() if alive(p)}
        raise AssertionError(f"{path}: processes outlived their kernel: {left}") from None


@pytest.mark.browser
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: Path(p).stem)
def test_lesson_in_the_browser(page, lab, path):
    notebook = run_like_a_learner(page, lab, path)
    name = Path(path).stem
    for index, click in CONTROLS.get(name, []):
        view = notebook.widget(index)
        try:
            click(view)
        finally:
            view.screenshot(SCREENSHOTS, f"{name}-widget{index}-clicked")
    assert notebook.log.page_errors == [], f"{path}: errors in the page"
    assert notebook.log.console_errors == [], f"{path}: errors in the browser console"
    save_and_reopen(notebook, lab, path)
    assert notebook.log.page_errors == [], f"{path}: errors in the page after reopening"
    assert notebook.log.console_errors == [], f"{path}: errors in the console after reopening"
    shut_down_leaves_no_process(lab, path)


@pytest.mark.browser
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: Path(p).stem)
def test_exercise_in_the_browser(page, lab, path):
    """Untouched: every check cell runs and says what is missing, without a traceback,
    and the summary at the end counts no check passing."""
    notebook = run_like_a_learner(page, lab, path)
    outputs = notebook.page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell",
        "cells => cells.map(c => [c.querySelector('.jp-InputArea').textContent,"
        " c.querySelector('.jp-OutputArea') ? c.querySelector('.jp-OutputArea').textContent : ''])")
    checks = [out for source, out in outputs if "grade(" in source]
    assert len(checks) >= 5, f"{path}: expected a check cell per sub-task"
    assert all("not written yet" in out for out in checks), f"{path}: {checks}"
    assert re.search(r"\b0 of \d+ checks? pass", outputs[-1][1]), outputs[-1][1]
    assert notebook.log.page_errors == [], f"{path}: errors in the page"
    assert notebook.log.console_errors == [], f"{path}: errors in the browser console"
    save_and_reopen(notebook, lab, path)
    assert notebook.log.page_errors == notebook.log.console_errors == [], f"{path}: after reopening"
    shut_down_leaves_no_process(lab, path)


@pytest.mark.browser
def test_the_checks_can_fail(page, lab):
    """The harness sees a traceback, a blank widget and a page error when there is one."""
    import nbformat
    broken = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as w\nw.Box(layout=w.Layout(height='2px'))"),
        nbformat.v4.new_code_cell("1 / 0"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    target = lab.root / "notebooks" / "_broken.ipynb"
    nbformat.write(broken, target)
    notebook = Notebook(page, lab, "notebooks/_broken.ipynb").open()
    notebook.run_all(timeout=60)
    assert any("ZeroDivisionError" in t for t in notebook.tracebacks())
    assert any("blank" in p for p in notebook.widget_problems())
    page.evaluate("setTimeout(() => { throw new Error('thrown in the page') }, 0)")
    page.wait_for_timeout(1000)  # Playwright delivers page events while it waits
    assert any("thrown in the page" in e for e in notebook.log.page_errors)
    lab.shutdown_kernels()
