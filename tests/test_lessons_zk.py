"""The helpers of lessons 01_1 and 01_2: HerdLock and the wake-up count, the znode
widget, the lock figures.  ZooKeeper tests run against the session's real ensemble."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from kazoo.recipe.watchers import DataWatch

from course_lib.coord.herd import HerdLock, count_wakeups
from course_lib.viz.locks import (fencing_figure, holder_gantt, holds_of, idle_gaps, overlaps,
                                  parse_lines, wakeup_figure)
from course_lib.viz.znode_widget import ZnodeWidget, parse_wchp
from course_lib.zk import connect


@pytest.fixture
def namespace():
    # never ends in 10 digits: that is how a sequential znode is recognised
    return f"t{uuid.uuid4().hex[:10]}z"


@pytest.fixture
def zk(session_ensemble, namespace):
    client = connect(session_ensemble.hosts)
    yield client
    client.delete(f"/{namespace}", recursive=True)
    client.stop()
    client.close()


@pytest.fixture
def clients(session_ensemble):
    made = [connect(session_ensemble.hosts) for _ in range(5)]
    yield made
    for c in made:
        c.stop()
        c.close()


# -- HerdLock and count_wakeups ----------------------------------------------------

def test_one_release_wakes_every_herd_waiter_but_one_queue_waiter(clients, namespace):
    herd = count_wakeups(clients, "herd", 4, namespace=namespace, name="herd")
    ours = count_wakeups(clients, "ours", 4, namespace=namespace, name="ours")
    assert herd.first_release_wakeups == 4  # the whole herd
    assert herd.wakeups_per_release > 2.0  # (N + 1) / 2 while the queue drains
    assert ours.first_release_wakeups == 1
    assert ours.wakeups == 4 and ours.wakeups_per_release == 1.0
    assert ours.fair and ours.served == ("w1", "w2", "w3", "w4")


def test_chapter_design_is_never_woken_it_polls(clients, namespace):
    polled = count_wakeups(clients, "chapter", 2, namespace=namespace, name="ch",
                           retry_delay=0.01, hold=0.05)
    assert polled.wakeups == 0
    assert polled.attempts_per_release > 2  # create() calls while the lock was held


def test_herd_lock_excludes_and_hands_out_growing_tokens(clients, namespace):
    holds, record = [], threading.Lock()

    def work(client, ident):
        lock = HerdLock(client, "x", ident, namespace=namespace)
        for _ in range(5):
            assert lock.acquire(timeout=20)
            start, token = time.time(), lock.fencing_token
            time.sleep(0.005)
            end = time.time()
            lock.release()
            with record:
                holds.append({"event": "held", "worker": ident, "acquired": start,
                              "released": end, "token": token})

    threads = [threading.Thread(target=work, args=(c, f"w{i}")) for i, c in enumerate(clients[:3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(holds) == 15 and overlaps(holds) == []
    ordered = holds_of(holds)
    assert [h["token"] for h in ordered] == sorted(h["token"] for h in ordered)


def test_herd_lock_timeout_and_misuse(zk, namespace):
    holder = HerdLock(zk, "t", "a", namespace=namespace)
    assert holder.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        holder.acquire()
    other = HerdLock(zk, "t", "b", namespace=namespace)
    began = time.monotonic()
    assert other.acquire(timeout=0.3) is False
    assert 0.3 <= time.monotonic() - began < 2
    holder.release()
    with pytest.raises(RuntimeError, match="not held"):
        holder.release()
    with pytest.raises(ValueError, match="lock name"):
        HerdLock(zk, "a/b")


def test_count_wakeups_rejects_bad_arguments(clients):
    with pytest.raises(ValueError, match="design"):
        count_wakeups(clients, "magic", 2)
    with pytest.raises(ValueError, match="clients"):
        count_wakeups(clients, "ours", 8)
    with pytest.raises(ValueError, match="waiters"):
        count_wakeups(clients, "ours", 0)


# -- ZnodeWidget -------------------------------------------------------------------

def test_widget_shows_kinds_versions_owners(zk, session_ensemble, namespace):
    other = connect(session_ensemble.hosts)
    root = f"/{namespace}"
    zk.ensure_path(root)
    widget = ZnodeWidget(zk, root, clients={"lesson": zk, "other": other})
    try:
        assert widget.create("cfg", "v1") == f"{root}/cfg"
        seq = widget.create("svc/inst-", "a", ephemeral=True, sequence=True)
        other.create(f"{root}/svc/mine", b"b", ephemeral=True)
        assert widget.set_data("cfg", "v2", version=0) == 1
        nodes = {n.path: n for n in widget.refresh()}
        assert nodes[root].kind == "persistent"
        assert nodes[f"{root}/cfg"].version == 1 and nodes[f"{root}/cfg"].data == b"v2"
        assert nodes[seq].kind == "ephemeral sequential"
        assert widget.owner_name(nodes[seq].ephemeral_owner) == "lesson"
        assert widget.owner_name(nodes[f"{root}/svc/mine"].ephemeral_owner) == "other"
        assert nodes[f"{root}/svc"].cversion >= 2
        tree = widget.figure.data[0]
        assert tree.uid == "znodes" and set(tree.ids) == set(nodes)
        other.stop()  # its session ends: its ephemeral node goes, the widget says whose it was
        other.close()
        nodes = {n.path: n for n in widget.refresh()}
        assert f"{root}/svc/mine" not in nodes
        assert any("svc/mine" in e and "owner other is gone" in e for _, e in widget.events)
    finally:
        widget.close()
        other.stop()


def test_widget_sees_one_shot_and_recipe_watches(zk, namespace):
    root = f"/{namespace}"
    zk.create(f"{root}/a", b"0", makepath=True)
    zk.create(f"{root}/b", b"0")
    widget = ZnodeWidget(zk, root, clients={"lesson": zk})
    try:
        zk.get(f"{root}/a", watch=lambda event: None)  # one-shot
        seen = []
        DataWatch(zk, f"{root}/b", lambda data, stat: seen.append(data))  # recipe
        nodes = {n.path: n for n in widget.refresh()}
        assert nodes[f"{root}/a"].data_watchers == ("lesson",)
        assert nodes[f"{root}/b"].watched
        zk.set(f"{root}/a", b"1")
        zk.set(f"{root}/b", b"1")
        deadline = time.monotonic() + 5
        while seen[-1] != b"1" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        nodes = {n.path: n for n in widget.refresh()}
        assert not nodes[f"{root}/a"].watched  # fired once, gone
        assert nodes[f"{root}/b"].watched  # the recipe set it again
        assert any(f"{root}/a fired" in e for _, e in widget.events)
        assert "👁" in " ".join(widget.figure.data[0].labels)
    finally:
        widget.close()


def test_widget_nonsense_actions_show_a_message(zk, namespace):
    root = f"/{namespace}"
    zk.ensure_path(f"{root}/parent/child")
    widget = ZnodeWidget(zk, root)
    try:
        widget.delete_button.click()
        assert "give a path" in widget.message_text
        widget.path_text.value = "parent"
        widget.delete_button.click()
        assert widget.message_text.endswith("has children: delete them first")
        assert widget.delete("missing") is False and "no node" in widget.message_text
        assert widget.create("parent", "x") is None and "already exists" in widget.message_text
        assert widget.create("/elsewhere", "x") is None and "outside" in widget.message_text
        eph = widget.create("e", "x", ephemeral=True)
        assert widget.create("e/child", "x") is None and "ephemeral" in widget.message_text
        assert widget.set_data("parent", "x", version=7) is None and "version 7" in widget.message_text
        assert widget.delete(root) is False and "root" in widget.message_text
        widget.path_text.value, widget.data_text.value = "made", "hello"
        widget.sequence_box.value = True
        widget.create_button.click()
        assert "created" in widget.message_text and "made0000000" in widget.message_text
        assert widget.delete(eph) is True
        with pytest.raises(ValueError):
            widget.create(42)
        with pytest.raises(ValueError):
            widget.set_data("parent", 3.5)
        with pytest.raises(ValueError):
            ZnodeWidget(zk, "relative")
        with pytest.raises(ValueError):
            ZnodeWidget("not a client", root)
    finally:
        widget.close()


def test_widget_live_task_refreshes_and_stops(zk, namespace):
    root = f"/{namespace}"
    zk.ensure_path(root)
    widget = ZnodeWidget(zk, root, interval=0.1)
    widget.start_live()  # no running loop here: a message, not an error
    assert not widget.live and "event loop" in widget.message_text

    async def run():
        widget.live_button.value = True  # the button starts the task
        assert widget.live
        before = widget.refreshes
        zk.create(f"{root}/appeared", b"")
        await asyncio.sleep(0.6)
        widget.live_button.value = False
        return widget.refreshes - before

    try:
        assert asyncio.run(run()) >= 2
        assert not widget.live
        assert any(e.startswith("+ ") and e.endswith("/appeared (persistent)") for _, e in widget.events)
    finally:
        widget.close()


def test_parse_wchp():
    reply = "/a/b\n\t0x1000001\n\t0x2a\n/c\n\t0x5\n"
    assert parse_wchp(reply) == {"/a/b": {0x1000001, 0x2a}, "/c": {5}}


# -- lock figures ------------------------------------------------------------------

HOLDS = [
    {"event": "held", "worker": "w1", "acquired": 10.0, "released": 10.5, "token": 1},
    {"event": "held", "worker": "w10", "acquired": 10.6, "released": 11.0, "token": 2},
    {"event": "held", "worker": "w2", "acquired": 11.2, "released": 11.3, "token": 3},
    {"event": "done", "worker": "w2", "wakeups": 1},
]


def test_gantt_one_row_per_worker_bars_from_acquired_to_released():
    figure = holder_gantt(HOLDS)
    assert [t.uid for t in figure.data] == ["holds-w1", "holds-w2", "holds-w10"]
    w10 = figure.data[2]
    assert list(w10.base) == [pytest.approx(0.6)] and list(w10.x) == [pytest.approx(0.4)]
    assert w10.customdata[0][0] == 2 and "fencing token" in w10.hovertemplate
    assert list(figure.layout.yaxis.categoryarray) == ["w10", "w2", "w1"]
    kinds = holder_gantt([dict(h, kind="read") for h in HOLDS[:3]], colour_by="kind")
    assert [t.name for t in kinds.data] == ["read"]
    with pytest.raises(ValueError, match="held"):
        holder_gantt([HOLDS[3]])
    with pytest.raises(ValueError, match="colour_by"):
        holder_gantt(HOLDS, colour_by="mood")


def test_gantt_marks_an_event_at_its_time_since_the_first_acquisition():
    figure = holder_gantt(HOLDS, marks={"leader killed": 10.8})
    (line,) = figure.layout.shapes
    assert line.x0 == line.x1 == pytest.approx(0.8) and line.line.dash == "dash"
    assert [a.text for a in figure.layout.annotations] == ["leader killed"]


def test_overlaps_and_idle_gaps():
    assert overlaps(HOLDS) == []
    assert idle_gaps(HOLDS) == [pytest.approx(0.1), pytest.approx(0.2)]
    clash = HOLDS + [{"event": "held", "worker": "w3", "acquired": 10.2, "released": 10.3}]
    assert [(a["worker"], b["worker"]) for a, b in overlaps(clash)] == [("w1", "w3")]
    with pytest.raises(ValueError, match="released before acquired"):
        holds_of([{"event": "held", "worker": "x", "acquired": 2, "released": 1}])


def test_parse_lines_and_other_figures():
    assert parse_lines('{"event": "held"}\n\n{"a": 1}\n') == [{"event": "held"}, {"a": 1}]
    with pytest.raises(ValueError, match="line 2"):
        parse_lines('{}\nnot json\n')
    rows = [{"design": d, "waiters": n, "wakeups_per_release": v}
            for d, n, v in (("herd", 2, 1.5), ("herd", 4, 2.5), ("ours", 2, 1.0), ("ours", 4, 1.0))]
    figure = wakeup_figure(rows)
    assert [t.uid for t in figure.data] == ["wakeups_per_release-herd", "wakeups_per_release-ours"]
    assert list(figure.data[0].y) == [1.5, 2.5]
    writes = [{"event": "write", "worker": "A", "time": 1.0, "accepted": True, "token": 5},
              {"event": "write", "worker": "B", "time": 3.0, "accepted": True, "token": 9},
              {"event": "write", "worker": "A", "time": 4.0, "accepted": False, "token": 5}]
    figure = fencing_figure(writes, paused=(1.1, 3.9), expired_at=2.5)
    refused = next(t for t in figure.data if t.uid == "writes-refused")
    assert list(refused.y) == ["A"] and list(refused.customdata) == [5]
    with pytest.raises(ValueError):
        fencing_figure([])
