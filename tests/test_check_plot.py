"""The history plot: rows per client, failing operations highlighted, faults shaded."""

import plotly.graph_objects as go
import pytest

from course_lib.check import Operation, check, kv, plot_history, register

O = Operation


def _traces(fig):
    return {trace.name: trace for trace in fig.data}


def test_failing_operations_are_highlighted():
    history = [O(0, ("write", 1), 0, None, 1), O(1, ("read", None), 2, 5, 3),
               O(2, ("write", 2), 0)]
    result = check(register(), history)
    fig = plot_history(history, result, faults=[(1.5, 2.5, "partition")])
    assert isinstance(fig, go.Figure)
    traces = _traces(fig)
    assert set(traces) == {"cannot be placed", "linearizable prefix", "outcome unknown"}
    failing = traces["cannot be placed"]
    assert list(failing.y) == ["client 1"] and list(failing.base) == [2]
    assert list(failing.text) == ["r → 5"]
    unknown = traces["outcome unknown"]
    assert unknown.base[0] + unknown.x[0] > 3
    assert "NOT linearizable" in fig.layout.title.text
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1) == (1.5, 2.5)
    assert fig.layout.annotations[0].text == "partition"


def test_rows_are_one_per_client_and_bars_span_call_to_return():
    history = [O(c, ("write", c), c, None, c + 2) for c in range(4)]
    fig = plot_history(history, check(register(), history))
    (trace,) = fig.data
    assert trace.name == "operation"
    assert list(trace.base) == [0, 1, 2, 3] and list(trace.x) == [2, 2, 2, 2]
    assert list(fig.layout.yaxis.categoryarray) == [f"client {c}" for c in (3, 2, 1, 0)]


def test_plot_without_a_result_and_one_partition():
    history = [O(0, ("put", "x", "a"), 0, None, 1), O(0, ("get", "y"), 2, "", 3)]
    fig = plot_history(history, model=kv(), key="y")
    (trace,) = fig.data
    assert list(trace.text) == ["get 'y' → ''"]


def test_fault_objects_and_open_ended_faults():
    class Fault:
        start, end, label = 1.0, None, "kill n1"

    fig = plot_history([O(0, ("read", None), 0, None, 4)], faults=[Fault()])
    assert fig.layout.shapes[0].x1 > 4


def test_large_histories_are_drawn_without_labels():
    history = [O(c % 10, ("write", c), c, None, c + 0.5) for c in range(1000)]
    fig = plot_history(history, check(register(), history))
    assert fig.data[0].text is None
    assert len(fig.data[0].base) == 1000


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="not an Operation"):
        plot_history([("write", 1)])
    with pytest.raises(ValueError, match="fault"):
        plot_history([], faults=[(1, 2)])
    with pytest.raises(ValueError, match="needs a model"):
        plot_history([], key="x")


def test_rows_grouped_by_key_with_the_linearization_and_the_state_before_the_failure():
    history = [O(0, ("put", "x", "a"), 0, None, 1), O(1, ("put", "y", "b"), 0, None, 1),
               O(0, ("get", "x"), 2, "a", 3), O(1, ("get", "y"), 2, "zzz", 3),
               O(1, ("append", "x", "c"), 4, None, 5)]
    result = check(kv(), history, all_partitions=True)
    fig = plot_history(history, result)
    rows = list(fig.layout.yaxis.categoryarray)[::-1]
    assert rows == ["x · client 0", "x · client 1", "y · client 1"]
    traces = _traces(fig)
    failing = traces["cannot be placed"]
    assert list(failing.y) == ["y · client 1"]
    assert "state before: " in failing.hovertext[0] and "'b'" in failing.hovertext[0]
    prefix = traces["linearizable prefix"]
    assert any("linearized #1 of 1" in h for h in prefix.hovertext)
    marks = [a.text for a in fig.layout.annotations if a.text.startswith("✗")]
    assert len(marks) == 1 and "'b'" in marks[0]
    flat = plot_history(history, result, by_key=False)
    assert list(flat.layout.yaxis.categoryarray)[::-1] == ["client 0", "client 1"]
    with pytest.raises(ValueError, match="by_key"):
        plot_history(history, by_key=True)
