"""The space-time diagram reads a simulated run's trace: arrows, fault bands, marks."""

import pytest

from course_lib.raft import SimCluster
from course_lib.viz.spacetime import spacetime_events, spacetime_figure


@pytest.fixture(scope="module")
def run():
    c = SimCluster(3, seed=1)
    c.run_for(600)
    first = c.leader()
    c.crash(first)
    c.run_for(500)
    c.restart(first)
    c.partition({first}, set(c.members) - {first})
    c.run_for(400)
    c.heal()
    c.run_for(300)
    return c, first


def test_every_delivery_is_an_arrow_from_its_send(run):
    c, _ = run
    st = spacetime_events(c.trace)
    delivered = [e for e in c.trace if e.kind == "deliver"]
    arrows = [a for a in st.arrows if a.arrived is not None]
    assert len(arrows) == len(delivered) > 50
    assert all(a.sent <= a.arrived for a in arrows)
    sends = {(e.node, e.details[0], id(e.details[1])): e.time for e in c.trace if e.kind == "send"}
    assert all(sends[(a.src, a.dst, id(a.msg))] == a.sent for a in arrows)


def test_drops_crashes_partitions_and_leaders_are_shown(run):
    c, first = run
    st = spacetime_events(c.trace)
    drops = [e for e in c.trace if e.kind == "drop"]
    assert len([a for a in st.arrows if a.why not in ("", "in flight")]) == len(drops) > 0
    down = [b for b in st.bands if b.kind == "down"]
    assert [(b.node, b.start, b.end) for b in down] == [(first, 600.0, 1100.0)]
    (cut,) = [b for b in st.bands if b.kind == "partition"]
    assert (cut.start, cut.end) == (1100.0, 1500.0) and first in cut.label
    leaders = [e for e in c.trace if e.kind == "state" and e.details[0] == "leader"]
    assert [(m.node, m.time) for m in st.marks] == [(e.node, e.time) for e in leaders]


def test_a_window_keeps_what_overlaps_it_and_the_figure_draws_it(run):
    c, _ = run
    whole, part = spacetime_events(c.trace), spacetime_events(c.trace, window=(700, 900))
    assert 0 < len(part.arrows) < len(whole.arrows)
    assert all(a.sent <= 900 and (a.arrived or a.sent) >= 700 for a in part.arrows)
    assert [b.kind for b in part.bands] == ["down"]
    fig = spacetime_figure(c.trace, window=(700, 900))
    names = {t.name for t in fig.data}
    assert {"AppendEntries", "AppendEntriesResponse"} <= names
    assert list(fig.layout.yaxis.ticktext) == ["n1", "n2", "n3"]
    assert fig.layout.xaxis.range[0] == 700


def test_bad_windows_and_too_many_arrows_are_refused_with_a_way_out(run):
    c, _ = run
    with pytest.raises(ValueError, match="window must end after"):
        spacetime_events(c.trace, window=(5, 5))
    with pytest.raises(ValueError, match=r"window must be \(start, end\)"):
        spacetime_events(c.trace, window="soon")
    with pytest.raises(ValueError, match="narrower window, e.g. window="):
        spacetime_figure(c.trace, max_arrows=10)


def test_a_model_checkers_counterexample_is_drawn_step_by_step():
    from course_lib.check.explore import explore, replay
    from course_lib.consensus.explore import ChapterModel
    from course_lib.viz.spacetime import stepwise

    model = lambda: ChapterModel(values=("a", "b"))
    steps = stepwise(replay(model, explore(model, depth=4).trace).timeline)
    st = spacetime_events(steps)
    delivered = [(a.src, a.dst, a.sent, a.arrived) for a in st.arrows if a.arrived is not None]
    assert delivered == [("n1", "n2", 1.0, 3.0), ("n2", "n1", 2.0, 4.0)]
    assert {a.why for a in st.arrows if a.arrived is None} == {"in flight"}
    assert [(m.node, m.time) for m in st.marks] == [("n2", 3.0), ("n1", 4.0)]
    fig = spacetime_figure(steps, xlabel="step")
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.title.text == "step"
