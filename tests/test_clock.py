"""The bucket is the clock: the node's offset from the Date of responses, against fake clocks, and what uses it."""

from __future__ import annotations

import random
import re
import time
from email.utils import formatdate

import ulid
from loops import Side
from packets_factory import A, B, udp

from agent import wire
from agent.clock import BOUND, NodeClock, explain, stamp_offset
from agent.events import PacketSeen
from agent.transport import open_bucket


class Clocks:
    """A monotonic clock, a wall clock `ahead` seconds off the bucket's, and a bucket whose Date they read."""

    def __init__(self, ahead: float, bucket_start: float = 1_800_000_000.0) -> None:
        self.mono = 1000.0
        self.bucket_at_zero = bucket_start - self.mono  # bucket time = mono + this
        self.ahead = ahead
        self.reports: list[str] = []
        self.clock = NodeClock(wall=self.wall, monotonic=lambda: self.mono, report=self.reports.append)

    def wall(self) -> float:
        return self.mono + self.bucket_at_zero + self.ahead

    def bucket(self) -> float:
        return self.mono + self.bucket_at_zero

    def request(self, rtt: float = 0.02, served_at: float = 0.5) -> None:
        """One request: sent now, dated by the bucket after served_at of the round trip, answered after rtt."""
        sent = self.mono
        self.mono += rtt * served_at
        date = float(int(self.bucket()))  # whole seconds, rounded down, as HTTP dates are
        self.mono += rtt * (1 - served_at)
        self.clock.observe(date, sent, self.mono)

    def wait(self, seconds: float) -> None:
        self.mono += seconds


def test_until_a_response_the_wall_clock_is_the_bucket_s():
    clocks = Clocks(ahead=5)
    assert clocks.clock.offset() is None and not clocks.clock.known
    assert clocks.clock.now() == clocks.wall()


def test_the_offset_narrows_below_a_tenth_of_a_second_from_whole_second_dates():
    rng = random.Random(19)
    for ahead in (5.0, -15.0, 90.0, 0.3, -0.7):
        clocks = Clocks(ahead)
        for _ in range(200):
            clocks.wait(rng.uniform(0, 0.5))
            clocks.request(rtt=rng.uniform(0.001, 0.05), served_at=rng.random())
        offset = clocks.clock.offset()
        assert offset is not None and abs(offset - ahead) < 0.1, (ahead, offset)
        assert abs(clocks.clock.now() - clocks.bucket()) < 0.1
        assert clocks.clock.uncertainty() < 0.1


def test_a_slow_answer_widens_its_sample_and_moves_nothing():
    clocks = Clocks(ahead=5)
    for _ in range(50):
        clocks.wait(0.37)
        clocks.request()
    before = clocks.clock.offset()
    for _ in range(20):  # held back for seconds on the way (a slow link, a proxy that delays answers)
        clocks.request(rtt=3.0, served_at=0.9)
    after = clocks.clock.offset()
    assert before is not None and after is not None and abs(after - before) < 0.05


def test_a_step_of_the_wall_clock_moves_no_judgement():
    clocks = Clocks(ahead=0)
    for _ in range(30):
        clocks.wait(0.3)
        clocks.request()
    bucket_now = clocks.clock.now()
    clocks.ahead = 3600.0  # the wall clock jumps an hour (a VM resumed, a daemon stepping it)
    assert abs(clocks.clock.now() - bucket_now) < 1e-9
    offset = clocks.clock.offset()
    assert offset is not None and abs(offset - 3600) < 0.1  # and it is told


def test_a_step_of_the_bucket_s_clock_is_followed_forward_and_waited_for_back():
    clocks = Clocks(ahead=0)
    for _ in range(30):
        clocks.wait(0.3)
        clocks.request()
    clocks.bucket_at_zero += 30  # the bucket's clock was wrong and is set right
    for _ in range(30):
        clocks.wait(0.3)
        clocks.request()
    assert abs(clocks.clock.now() - clocks.bucket()) < 0.5
    before = clocks.clock.now()
    clocks.bucket_at_zero -= 5  # and back: time stands still until the bucket's catches up
    for _ in range(10):
        clocks.wait(0.3)
        clocks.request()
        assert clocks.clock.now() == before
    clocks.wait(3)
    clocks.request()
    assert abs(clocks.clock.now() - clocks.bucket()) < 0.5


def test_a_clock_surely_more_than_a_second_off_says_so_once_with_how_far():
    clocks = Clocks(ahead=-15)
    for _ in range(20):
        clocks.wait(0.3)
        clocks.request()
    assert len(clocks.reports) == 1
    told = re.search(r"clock is ([0-9.]+) s behind the bucket's \(±([0-9.]+) s\): start your time daemon",
                     clocks.reports[0])
    assert told and abs(float(told.group(1)) - 15) <= float(told.group(2)) + 0.05, clocks.reports


def test_a_clock_within_a_second_says_nothing():
    for ahead in (0.0, 0.6, -0.8):
        clocks = Clocks(ahead)
        for _ in range(50):
            clocks.wait(0.3)
            clocks.request(rtt=0.4)
        assert clocks.reports == [], ahead


def test_beyond_fifteen_minutes_the_offset_is_refused_not_corrected():
    clocks = Clocks(ahead=BOUND + 60)
    clocks.request()
    assert clocks.clock.refused
    assert clocks.clock.now() == clocks.wall()  # judged as before: other nodes refuse it, and it is told why
    assert len(clocks.reports) == 1
    assert "beyond 15 minutes" in clocks.reports[0] and "not corrected" in clocks.reports[0]


def test_dates_are_read_from_the_header_and_a_bad_one_is_ignored():
    clocks = Clocks(ahead=0)
    clocks.clock.observe_date("not a date", clocks.mono, clocks.mono)
    clocks.clock.observe_date(None, clocks.mono, clocks.mono)
    assert not clocks.clock.known
    clocks.clock.observe_date(formatdate(int(clocks.bucket()), usegmt=True), clocks.mono - 0.01, clocks.mono)
    assert clocks.clock.known and abs(clocks.clock.now() - clocks.bucket()) <= 1


def test_keys_are_stamped_in_the_clock_given_and_stay_in_order_when_it_steps_back():
    now = [1_800_000_000.0]
    maker = wire.KeyMaker(clock=lambda: now[0])
    first = maker.make(A)
    assert wire.parse_key(first).timestamp == 1_800_000_000.0
    now[0] -= 2  # the estimate of the bucket's time moved back
    second = maker.make(A)
    assert second > first


def test_a_refused_object_says_how_far_its_stamp_was_from_the_bucket_s_clock():
    assert stamp_offset(100.0, 94.0, 200.0) == 5.5  # LastModified is rounded down: half a second on average
    assert explain(100.0, 94.0, 200.0) == "stamped 5.5 s ahead of the bucket's clock when PUT, 106 s ago"
    assert explain(85.0, None, 100.0) == "stamped 15.0 s behind the bucket's clock"


def test_an_s3_bucket_learns_the_bucket_s_time_from_its_responses(s3_server, bucket):
    clock = NodeClock()
    store = open_bucket(bucket, s3_server.endpoint_url, "us-east-1", clock=clock)
    store.list_objects("", 1)
    assert clock.known and clock.samples == 1
    offset = clock.offset()
    assert offset is not None and abs(offset) <= 1.1  # one machine: one clock, within a Date's second


def test_a_refused_key_tells_in_its_drop_how_far_ahead_its_stamp_was(s3_server, bucket):
    receiver = Side(s3_server.endpoint_url, bucket, B)
    try:
        receiver.bucket.put(f"{B}/{ulid.ULID.from_timestamp(time.time() + 90)}", udp(A, B, b"from the future"))
        receiver.receive()
        assert receiver.delivered == [] and receiver.stats.dropped == {"future": 1}
        (seen,) = [event for event in receiver.events.drain() if isinstance(event, PacketSeen)]
        told = re.search(r"stamped ([0-9.]+) s ahead of the bucket's clock when PUT", seen.summary)
        assert seen.reason == "future" and told and 88 < float(told.group(1)) < 92, seen.summary
    finally:
        receiver.close()
