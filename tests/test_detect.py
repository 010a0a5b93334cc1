"""course_lib.detect: phi accrual (tails, closed forms, O(1)) and the timeout detector."""

import math
import random
import statistics
import sys

import pytest

from course_lib.chapter import detector as chapter
from course_lib.detect import FailureDetector, PhiAccrualDetector, tails

LN10 = math.log(10.0)


def normal_phi_closed_form(z):
    return -math.log10(0.5 * math.erfc(z / math.sqrt(2.0)))


def akka_logistic_phi(time_diff, mean, std):
    """Akka's PhiAccrualFailureDetector.phi, transcribed."""
    y = (time_diff - mean) / std
    e = math.exp(-y * (1.5976 + 0.070566 * y * y))
    if time_diff > mean:
        return -math.log10(e / (1.0 + e))
    return -math.log10(1.0 - 1.0 / (1.0 + e))


def feed(detector, times, node="n"):
    for t in times:
        detector.heartbeat(node, t)


# -- tails ------------------------------------------------------------------------

@pytest.mark.parametrize("z", [-8.0, -3.0, -0.5, 0.0, 0.3, 1.0, 2.5, 5.0, 10.0, 19.99, 25.0, 37.0])
def test_normal_phi_matches_erfc_wherever_erfc_is_representable(z):
    assert tails.normal_phi(z) == pytest.approx(normal_phi_closed_form(z), rel=1e-12, abs=1e-15)


def test_normal_tail_asymptotic_series_matches_erfc_on_their_overlap():
    for i in range(0, 171):
        z = 20.0 + i * 0.1
        exact = math.log(0.5 * math.erfc(z / math.sqrt(2.0)))
        assert tails._log_normal_tail_asymptotic(z) == pytest.approx(exact, rel=1e-13)


def test_normal_phi_is_continuous_at_the_switch_to_the_asymptotic_series():
    z = tails.ASYMPTOTIC_FROM
    below, above = tails.normal_phi(math.nextafter(z, 0.0)), tails.normal_phi(z)
    assert above == pytest.approx(below, rel=1e-13)


def test_normal_phi_is_finite_and_increasing_far_beyond_erfc_underflow():
    zs = [40.0, 100.0, 1e3, 1e5, 1e7]
    values = [tails.normal_phi(z) for z in zs]
    assert math.erfc(40.0 / math.sqrt(2.0)) == 0.0
    assert all(math.isfinite(v) for v in values)
    assert values == sorted(values)
    assert values[-1] == pytest.approx((1e14 / 2 + math.log(1e7) + 0.5 * math.log(2 * math.pi)) / LN10)


@pytest.mark.parametrize("y", [-10.0, -5.0, -1.0, 0.0, 0.7, 3.0, 8.0, 15.0])
def test_logistic_phi_matches_akkas_formula_where_it_is_finite(y):
    assert tails.logistic_phi(y) == pytest.approx(akka_logistic_phi(y, 0.0, 1.0), rel=1e-12, abs=1e-15)


def test_logistic_phi_stays_finite_where_akkas_formula_gives_inf():
    with pytest.raises((ValueError, ZeroDivisionError, OverflowError)):
        akka_logistic_phi(40.0, 0.0, 1.0)
    assert math.isfinite(tails.logistic_phi(40.0)) and tails.logistic_phi(1e4) > tails.logistic_phi(40.0)


@pytest.mark.parametrize("inverse, phi", [
    (tails.normal_phi_inverse, tails.normal_phi),
    (tails.logistic_phi_inverse, tails.logistic_phi),
    (tails.exponential_phi_inverse, tails.exponential_phi),
])
@pytest.mark.parametrize("level", [0.01, 0.2, 0.5, 1.0, 3.0, 8.0, 16.0, 100.0, 400.0, 5000.0])
def test_phi_inverses_invert(inverse, phi, level):
    assert phi(inverse(level)) == pytest.approx(level, rel=1e-10)


# -- phi against closed forms -------------------------------------------------------

ARRIVALS = [0.0, 1.0, 2.1, 2.9, 4.0]  # intervals 1.0, 1.1, 0.8, 1.1
INTERVALS = [1.0, 1.1, 0.8, 1.1]
MEAN = statistics.fmean(INTERVALS)
STD = statistics.pstdev(INTERVALS)


def known_detector(distribution, **options):
    d = PhiAccrualDetector(window_size=4, min_std_dev=1e-6, distribution=distribution, **options)
    feed(d, ARRIVALS)
    return d


def test_window_statistics_are_those_of_the_last_window_size_intervals():
    d = known_detector("normal")
    stats = d.interval_stats("n")
    assert stats.count == 4
    assert stats.mean == pytest.approx(MEAN, rel=1e-12)
    assert stats.std_dev == pytest.approx(STD, rel=1e-9)
    assert d.intervals("n") == pytest.approx(INTERVALS, rel=1e-9)


@pytest.mark.parametrize("elapsed", [0.0, 0.5, 1.0, 1.2, 2.0, 3.5])
def test_normal_phi_is_minus_log10_of_the_normal_tail(elapsed):
    d = known_detector("normal")
    expected = normal_phi_closed_form((elapsed - MEAN) / STD)
    assert d.phi("n", 4.0 + elapsed) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("elapsed", [0.0, 0.5, 1.0, 1.2, 2.0, 3.5])
def test_logistic_phi_is_akkas(elapsed):
    d = known_detector("logistic")
    assert d.phi("n", 4.0 + elapsed) == pytest.approx(akka_logistic_phi(elapsed, MEAN, STD), rel=1e-8)


@pytest.mark.parametrize("elapsed", [0.0, 0.5, 1.0, 2.0, 3.5])
def test_exponential_phi_is_cassandras(elapsed):
    d = known_detector("exponential")
    assert d.phi("n", 4.0 + elapsed) == pytest.approx(elapsed / (MEAN * LN10), rel=1e-12, abs=1e-15)


def test_acceptable_pause_is_added_to_the_mean():
    plain = known_detector("normal")
    paused = known_detector("normal", acceptable_pause=2.5)
    for elapsed in (0.5, 1.0, 2.0):
        assert paused.phi("n", 4.0 + elapsed + 2.5) == pytest.approx(plain.phi("n", 4.0 + elapsed), rel=1e-9)


def test_min_std_dev_floors_a_perfectly_regular_sender():
    d = PhiAccrualDetector(window_size=10, min_std_dev=0.05)
    feed(d, [0.1 * i for i in range(30)])
    assert d.interval_stats("n").std_dev == pytest.approx(0.0, abs=1e-9)
    last = d.last_heartbeat("n")
    assert d.phi("n", last + 0.2) == pytest.approx(normal_phi_closed_form((0.2 - 0.1) / 0.05), rel=1e-6)


def test_first_heartbeat_bootstraps_the_window_as_akka_does():
    d = PhiAccrualDetector(first_heartbeat_estimate=0.4)
    d.heartbeat("n", 10.0)
    stats = d.interval_stats("n")
    assert (stats.count, stats.mean) == (2, pytest.approx(0.4))
    assert stats.std_dev == pytest.approx(0.1)
    assert 0.0 < d.phi("n", 10.2) < d.threshold < d.phi("n", 12.0)


@pytest.mark.parametrize("window", [1, 3, 50])
def test_running_sums_equal_recomputed_statistics_after_the_ring_wraps(window):
    rng = random.Random(window)
    d = PhiAccrualDetector(window_size=window)
    t, times = 0.0, []
    for _ in range(5 * window + 7):
        t += rng.uniform(0.05, 0.3)
        times.append(t)
    feed(d, times)
    recent = [b - a for a, b in zip(times, times[1:])][-window:]
    stats = d.interval_stats("n")
    assert stats.count == window
    assert stats.mean == pytest.approx(statistics.fmean(recent), rel=1e-8)
    assert stats.std_dev == pytest.approx(statistics.pstdev(recent), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("distribution", ["normal", "logistic", "exponential"])
def test_phi_is_monotone_in_elapsed_time(distribution):
    d = PhiAccrualDetector(window_size=100, min_std_dev=0.01, distribution=distribution)
    rng = random.Random(1)
    t = 0.0
    for _ in range(200):
        t += rng.gauss(0.1, 0.02) if rng.random() > 0.01 else 0.5
        d.heartbeat("n", t)
    values = [d.phi("n", t + k * 0.01) for k in range(0, 3000)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[-1] > values[20] > values[0]


@pytest.mark.parametrize("distribution", ["normal", "logistic", "exponential"])
def test_phi_of_a_node_silent_for_1000_mean_intervals_is_finite_and_suspected(distribution):
    d = PhiAccrualDetector(window_size=1000, min_std_dev=1e-4, distribution=distribution)
    feed(d, [0.1 * i for i in range(2000)])
    last = d.last_heartbeat("n")
    phi = d.phi("n", last + 1000 * 0.1)
    assert math.isfinite(phi) and phi > d.threshold
    assert d.suspected(last + 1000 * 0.1) == {"n"}
    assert not d.is_available("n", last + 1000 * 0.1)


@pytest.mark.parametrize("distribution", ["normal", "logistic", "exponential"])
@pytest.mark.parametrize("threshold", [0.5, 3.0, 8.0, 40.0])
def test_time_to_suspicion_is_where_phi_reaches_the_threshold(distribution, threshold):
    d = PhiAccrualDetector(window_size=20, min_std_dev=0.005, distribution=distribution,
                           acceptable_pause=0.05)
    feed(d, [0.0, 0.1, 0.22, 0.31, 0.4, 0.52, 0.6])
    wait = d.time_to_suspicion("n", threshold)
    assert d.phi("n", 0.6 + wait) == pytest.approx(threshold, rel=1e-9)


def test_the_chapters_phi_falls_for_a_dead_node_and_ours_rises():
    clock = chapter.ManualClock()
    old = chapter.PhiAccrualDetector(clock=clock)
    new = PhiAccrualDetector(min_std_dev=0.01)
    rng = random.Random(3)
    for _ in range(100):
        clock.advance(rng.gauss(0.1, 0.01))
        old.heartbeat("n")
        new.heartbeat("n", clock.now)
    last = clock.now
    olds, news = [], []
    for silence in (0.1, 0.5, 1.0, 10.0, 100.0):
        clock.now = last + silence
        olds.append(old.phi("n"))
        news.append(new.phi("n", clock.now))
    assert olds == sorted(olds, reverse=True) and olds[-1] == 0.0
    assert news == sorted(news) and news[-1] > new.threshold


# -- O(1): count the work instead of timing it ---------------------------------------

class CountingList(list):
    """A list that counts every element read through iteration, indexing or copying."""

    touched = 0

    def __iter__(self):
        for x in list.__iter__(self):
            CountingList.touched += 1
            yield x

    def __getitem__(self, index):
        CountingList.touched += len(range(*index.indices(len(self)))) if isinstance(index, slice) else 1
        return list.__getitem__(self, index)

    def copy(self):
        CountingList.touched += len(self)
        return list.copy(self)


def count_work(call, source_file):
    """(lines executed in ``source_file``, list elements read) during ``call()``."""
    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        if frame.f_code.co_filename != source_file:
            return None
        if event == "line":
            lines += 1
        return tracer

    CountingList.touched = 0
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return lines, CountingList.touched


def our_work(window, distribution):
    d = PhiAccrualDetector(window_size=window, min_std_dev=0.001, distribution=distribution)
    rng = random.Random(0)
    t = 0.0
    for _ in range(window + 5):
        t += rng.uniform(0.09, 0.11)
        d.heartbeat("n", t)
    h = d._histories["n"]
    h.ring = CountingList(h.ring)

    def call():
        d.heartbeat("n", t + 0.1)
        d.phi("n", t + 0.15)

    import course_lib.detect.phi as phi_module
    hb_phi = count_work(call, phi_module.__file__)
    import course_lib.detect.distributions as dist_module
    dist = count_work(lambda: d.phi("n", t + 0.3), dist_module.__file__)
    return hb_phi, dist


@pytest.mark.parametrize("distribution", ["normal", "logistic", "exponential"])
def test_heartbeat_and_phi_do_the_same_work_at_window_10_and_10000(distribution):
    small, large = our_work(10, distribution), our_work(10_000, distribution)
    assert small == large
    (lines, touched), _ = large
    assert touched <= 2 and lines < 60


def test_the_work_counter_does_see_the_chapters_o_window_phi():
    def work(window):
        clock = chapter.ManualClock()
        d = chapter.PhiAccrualDetector(window_size=window, clock=clock)
        for _ in range(window + 5):
            clock.advance(0.1 + 0.001 * (len(d.intervals.get("n", ())) % 7))
            d.heartbeat("n")
        d.intervals["n"] = CountingList(d.intervals["n"])
        clock.advance(0.05)
        return count_work(lambda: d.phi("n"), chapter.__file__)

    (small_lines, small_touched), (large_lines, large_touched) = work(10), work(10_000)
    assert large_touched >= 2 * 10_000 and small_touched <= 2 * 10 + 2
    assert large_lines > 100 * small_lines


# -- contracts and bad arguments -----------------------------------------------------

def test_an_unmonitored_node_is_available_and_has_no_statistics():
    d = PhiAccrualDetector()
    assert d.phi("ghost", 5.0) == 0.0 and d.is_available("ghost", 5.0)
    assert d.suspected(5.0) == frozenset() and d.nodes == ()
    with pytest.raises(ValueError, match="ghost"):
        d.time_to_suspicion("ghost")
    with pytest.raises(ValueError, match="ghost"):
        d.interval_stats("ghost")


def test_remove_forgets_a_node():
    d = known_detector("normal")
    d.remove("n")
    assert d.phi("n", 100.0) == 0.0 and d.nodes == ()
    d.remove("n")


def test_now_defaults_to_the_monotonic_clock():
    d = PhiAccrualDetector(first_heartbeat_estimate=100.0)
    d.heartbeat("n")
    assert 0.0 <= d.phi("n") < 1.0
    assert abs(d.last_heartbeat("n") - __import__("time").monotonic()) < 5.0


@pytest.mark.parametrize("kwargs, name", [
    (dict(threshold=0), "threshold"), (dict(threshold=-1.0), "threshold"),
    (dict(threshold=math.inf), "threshold"), (dict(threshold="8"), "threshold"),
    (dict(window_size=0), "window_size"), (dict(window_size=2.5), "window_size"),
    (dict(window_size=True), "window_size"), (dict(min_std_dev=0.0), "min_std_dev"),
    (dict(min_std_dev=math.nan), "min_std_dev"), (dict(acceptable_pause=-0.1), "acceptable_pause"),
    (dict(first_heartbeat_estimate=0.0), "first_heartbeat_estimate"),
    (dict(distribution="gamma"), "distribution"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PhiAccrualDetector(**kwargs)


def test_threshold_setter_validates():
    d = PhiAccrualDetector()
    d.threshold = 3.5
    assert d.threshold == 3.5
    with pytest.raises(ValueError, match="threshold"):
        d.threshold = 0.0


@pytest.mark.parametrize("now", [0.5, math.nan, math.inf])
def test_heartbeats_going_back_in_time_or_not_finite_are_refused(now):
    d = PhiAccrualDetector()
    d.heartbeat("n", 1.0)
    with pytest.raises(ValueError, match="now"):
        d.heartbeat("n", now)
    with pytest.raises(ValueError, match="now"):
        d.phi("n", now)


# -- the timeout detector -----------------------------------------------------------

def test_timeout_detector_suspects_after_the_timeout_and_clears_on_heartbeat():
    fd = FailureDetector("me", ["me", "a", "b"], timeout=1.0, start=0.0)
    assert fd.suspected(0.5) == frozenset()
    fd.heartbeat("a", 0.8)
    assert fd.suspected(1.5) == {"b"}
    assert fd.check_nodes(2.0) == {"a", "b"}
    fd.heartbeat("a", 2.1)
    assert fd.suspected(2.5) == {"b"} and fd.is_available("me", 100.0)


def test_timeout_detector_gives_a_never_heard_node_the_timeout_from_the_start():
    chapter_clock = chapter.ManualClock(1000.0)
    theirs = chapter.FailureDetector("me", ["me", "a"], timeout=1.0, clock=chapter_clock)
    assert theirs.check_nodes() == {"a"}
    ours = FailureDetector("me", ["me", "a"], timeout=1.0, start=1000.0)
    assert ours.check_nodes(1000.0) == set() and ours.check_nodes(1001.5) == {"a"}


@pytest.mark.parametrize("kwargs, name", [
    (dict(timeout=0), "timeout"), (dict(timeout=math.nan), "timeout"),
    (dict(nodes=["a", "a"]), "nodes"), (dict(start=math.inf), "now"),
])
def test_timeout_detector_bad_arguments(kwargs, name):
    args = dict(node_id="me", nodes=["me", "a"], timeout=1.0, start=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        FailureDetector(**args)


def test_timeout_detector_refuses_strangers_and_time_travel():
    fd = FailureDetector("me", ["me", "a"], timeout=1.0, start=0.0)
    with pytest.raises(ValueError, match="stranger"):
        fd.heartbeat("stranger", 1.0)
    fd.heartbeat("a", 2.0)
    with pytest.raises(ValueError, match="before"):
        fd.heartbeat("a", 1.0)


def test_window_parameters_are_fixed_after_construction():
    d = PhiAccrualDetector(window_size=10, min_std_dev=0.01, distribution="logistic")
    for name in ("window_size", "min_std_dev", "acceptable_pause", "first_heartbeat_estimate",
                 "distribution"):
        with pytest.raises(AttributeError):
            setattr(d, name, getattr(d, name))
    assert (d.window_size, d.min_std_dev, d.distribution) == (10, 0.01, "logistic")
