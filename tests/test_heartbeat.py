"""The heartbeat, on a fake clock: faster on work, slower when idle, backs off when overrun."""

import threading

import pytest

from agent.heartbeat import HOLD_LIMIT, Heartbeat


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(fastest=0.001, slowest=0.5):
    return Heartbeat(fastest, slowest, clock=FakeClock())


def test_starts_idle_at_slowest():
    assert make().interval == 0.5


def test_work_halves_interval_down_to_fastest():
    beat = make()
    beat.found_work()
    assert beat.interval == 0.25  # the rate doubled
    for _ in range(20):
        beat.found_work()
    assert beat.interval == 0.001


def test_nothing_found_doubles_interval_up_to_slowest():
    beat = make()
    for _ in range(20):
        beat.found_work()
    beat.found_nothing()
    assert beat.interval == 0.002  # the rate halved
    for _ in range(20):
        beat.found_nothing()
    assert beat.interval == 0.5


def test_expect_work_jumps_to_fastest():
    beat = make()
    beat.expect_work()
    assert beat.interval == 0.001


def test_only_a_skipped_poll_is_a_missed_beat_and_it_leaves_the_rate_alone():
    beat = make()
    for _ in range(20):
        beat.found_work()
    assert beat.interval == 0.001 and beat.missed == 0
    beat.skipped()
    assert beat.missed == 1
    assert beat.interval == 0.001  # a full pipeline says nothing about how often to list


def test_manual_faster_and_slower_hold_until_automatic():
    beat = make()
    beat.faster()
    assert beat.interval == 0.25 and beat.manual
    beat.found_nothing()
    assert beat.interval == 0.25  # held against the loop's own adjustments
    beat.slower()
    beat.slower()
    assert beat.interval == 1.0  # a person may hold it past slowest, to let packets wait in the bucket
    beat.automatic()
    assert not beat.manual
    assert beat.interval == 0.5  # back within bounds
    beat.found_work()
    assert beat.interval == 0.25


def test_holding_slower_stops_at_the_hold_limit():
    beat = make()
    for _ in range(20):
        beat.slower()
    assert beat.interval == HOLD_LIMIT


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        Heartbeat(0.5, 0.1)


def test_wait_wakes_early_when_interval_shrinks():
    beat = Heartbeat(0.001, 30.0)  # real clock: a 30 s wait must end at once on faster()
    stop = threading.Event()
    result = []
    waiter = threading.Thread(target=lambda: result.append(beat.wait(stop)))
    waiter.start()
    for _ in range(15):
        beat.faster()
    waiter.join(timeout=2)
    assert result == [True]


def test_wait_returns_false_once_stopped():
    beat = Heartbeat(0.001, 30.0)
    stop = threading.Event()
    stop.set()
    assert beat.wait(stop) is False


def test_a_poll_is_never_followed_sooner_than_it_took():
    now = [0.0]
    beat = Heartbeat(0.001, 0.5, clock=lambda: now[0])
    for _ in range(20):
        beat.found_work()
    beat.poll_took(0.040)  # the endpoint is slow: 40 ms a listing
    stop = threading.Event()

    def tick() -> None:  # a fake clock that moves a millisecond at a time
        while not stop.is_set() and now[0] < 1:
            now[0] += 0.001
            stop.wait(0.0005)

    ticker = threading.Thread(target=tick)
    ticker.start()
    assert beat.wait(stop)
    stop.set()
    ticker.join()
    assert now[0] >= 0.040 - 1e-9  # the interval says 1 ms; the last poll's 40 ms won
    assert beat.interval == 0.001 and beat.missed == 0  # neither the rate nor the missed beats changed
