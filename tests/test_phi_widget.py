"""course_lib.viz.phi_widget: a view over simulated and real heartbeat clusters."""

import asyncio
import time

import pytest

from course_lib.detect import NodeStatus, SimulatedCluster
from course_lib.detect.processes import ProcessCluster
from course_lib.viz.phi_widget import PhiWidget


@pytest.fixture
def widget():
    w = PhiWidget(SimulatedCluster(("a", "b", "c", "d", "e"), jitter=0.005, seed=1))
    yield w
    w.close()


def test_traces_are_named_for_the_legend(widget):
    names = [t.name for t in widget.figure.data]
    assert names == ["a", "b", "c", "d", "e", "threshold", "suspected",
                     "intervals", "fitted", "suspect after"]


def test_kill_button_makes_the_curve_cross_the_threshold_and_marks_it(widget):
    for _ in range(50):
        widget.step()
    widget.node_select.value = "b"
    widget.kill_button.click()
    assert widget.message_text == "killed node b"
    for _ in range(20):
        widget.step()
    phi_b = widget.figure.data[1].y
    assert phi_b[-1] > widget.cluster.detector.threshold > phi_b[0]
    assert [m[2] for m in widget._marks] == ["b"]
    assert widget.figure.data[6].x and "b" in widget.status.value


def test_nonsense_actions_show_a_message_instead_of_raising(widget):
    widget.node_select.value = "c"
    widget.kill_button.click()
    widget.pause_button.click()
    assert widget.message_text == "cannot pause node 'c': it is dead"
    assert "#c0392b" in widget.message.value
    widget.resume_button.click()
    assert "cannot resume" in widget.message_text
    widget.apply_button.click()
    assert "it is dead" in widget.message_text
    assert widget.act("explode") is False


def test_pause_resume_and_network_settings_go_to_the_model(widget):
    widget.node_select.value = "a"
    widget.pause_button.click()
    assert widget.cluster.status("a") is NodeStatus.PAUSED
    widget.resume_button.click()
    widget.jitter_slider.value = 0.02
    widget.delay_slider.value = 0.1
    widget.apply_button.click()
    info = widget.cluster.info("a")
    assert (info.status, info.jitter, info.delay) == (NodeStatus.ALIVE, 0.02, 0.1)


def test_threshold_slider_sets_the_detector_threshold_and_line(widget):
    widget.threshold_slider.value = 3.0
    assert widget.cluster.detector.threshold == 3.0
    assert widget.figure.data[5].y == (3.0, 3.0)


def test_histogram_shows_the_selected_nodes_window_and_fit(widget):
    for _ in range(30):
        widget.step()
    widget.node_select.value = "d"
    intervals = widget.figure.data[7].x
    assert len(intervals) == widget.cluster.detector.interval_stats("d").count
    assert max(widget.figure.data[8].y) > 0 and widget.figure.data[9].x[0] > 0.1
    assert widget.figure.layout.annotations[1].text == "intervals of d"


def test_a_frame_costs_well_under_20_ms_for_five_nodes(widget):
    for _ in range(60):
        widget.step()
    costs = sorted(widget.frame_ms)
    assert costs[len(costs) // 2] < 20.0


def test_start_without_an_event_loop_explains_instead_of_failing(widget):
    assert widget.start() is False
    assert "event loop" in widget.message_text and not widget.running


def test_live_task_redraws_at_most_fps_times_a_second_and_stops():
    async def scenario():
        w = PhiWidget(SimulatedCluster(("a", "b"), seed=2), fps=10)
        frames_before = w._frames
        assert w.start() is True
        await asyncio.sleep(0.55)
        frames = w._frames - frames_before
        virtual = w.cluster.now()
        w.stop()
        await asyncio.sleep(0.15)
        assert not w.running and w._frames - frames_before == frames
        w.close()
        return frames, virtual

    frames, virtual = asyncio.run(scenario())
    assert 2 <= frames <= 7
    assert 0.2 < virtual < 0.8


def test_bad_widget_arguments():
    cluster = SimulatedCluster(("a",))
    with pytest.raises(ValueError, match="fps"):
        PhiWidget(cluster, fps=60)
    with pytest.raises(ValueError, match="window"):
        PhiWidget(cluster, window=0)


def test_with_real_processes_kill_is_seen_live_and_close_kills_the_senders():
    async def scenario():
        w = PhiWidget(ProcessCluster(("a", "b"), interval=0.05, seed=3))
        pids = [w.cluster.pid("a"), w.cluster.pid("b")]
        w.start()
        await asyncio.sleep(1.0)
        assert w.cluster.sample().suspected == frozenset()
        w.node_select.value = "a"
        w.kill_button.click()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and "a" not in w._was_suspected:
            await asyncio.sleep(0.1)
        assert "a" in w._was_suspected
        w.close()
        return pids

    pids = asyncio.run(scenario())
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                assert "Z" in next(line for line in f if line.startswith("State:"))
        except FileNotFoundError:
            pass
