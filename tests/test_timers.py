"""Timers from measurements: the linger and the hold follow the endpoint's recent PUT and GET times, within bounds."""

from __future__ import annotations

import pytest

from agent import timers
from agent.metrics import Stats


def test_unmeasured_timers_are_the_old_fixed_ones():
    assert timers.linger(None) == timers.LINGER_CAP == 0.1
    assert timers.hold(None, None) == timers.HOLD_CAP == 0.5


@pytest.mark.parametrize(("put", "expected"), [(0.0001, timers.LINGER_FLOOR), (0.002, 0.004), (0.02, 0.04),
                                               (0.2, timers.LINGER_CAP)])
def test_a_dense_flow_lingers_a_couple_of_put_times_within_the_bounds(put, expected):
    assert timers.linger(put) == pytest.approx(expected)


def test_a_flow_to_a_doorbell_lingers_for_the_ring_too():
    assert timers.linger(0.002, 0.006) == pytest.approx(0.016)


@pytest.mark.parametrize(("get", "put", "expected"), [(0.001, 0.001, timers.HOLD_FLOOR), (0.02, 0.03, 0.14),
                                                      (0.03, None, 0.18), (0.1, 0.1, timers.HOLD_CAP)])
def test_a_slow_object_holds_the_rest_a_get_and_a_late_landing_long_within_the_bounds(get, put, expected):
    assert timers.hold(get, put) == pytest.approx(expected)


def test_the_timers_follow_the_requests_the_guard_timed():
    stats = Stats()
    now = [0.0]
    node = timers.Timers(stats, clock=lambda: now[0])
    assert (node.linger(), node.hold()) == (timers.LINGER_CAP, timers.HOLD_CAP)
    for seconds in (0.003, 0.004, 0.005):
        stats.request("s3", "put", seconds)
    for seconds in [0.02] * 9 + [0.03]:
        stats.request("s3", "get", seconds)
    stats.request("s3", "get", 5.0, error_kind="timeout")  # a failure is not a time the endpoint takes
    assert node.linger() == timers.LINGER_CAP  # worked out again only after REFRESH
    now[0] += timers.REFRESH
    assert node.linger() == node.linger(rings=True) == pytest.approx(2 * 0.004)
    stats.request("sqs", "send", 0.01)
    now[0] += timers.REFRESH
    assert node.linger(rings=True) == pytest.approx(2 * (0.004 + 0.01))
    assert node.hold() == pytest.approx(4 * 0.03 + 2 * 0.004)


def test_latency_quantiles_are_of_the_recent_successful_requests():
    stats = Stats()
    assert stats.latency_quantile("put", 0.5) is None
    for seconds in range(1, 101):
        stats.request("s3", "put", seconds / 1000)
    assert stats.latency_quantile("put", 0.5) == pytest.approx(0.069)  # the last 64: 37..100 ms
    assert stats.latency_quantile("put", 0.9) == pytest.approx(0.094)
    assert stats.latency_quantile("get", 0.5) is None
