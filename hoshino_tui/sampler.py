"""Turns the agent's cumulative counter snapshots into rates, costs and short histories for the panes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agent.events import State, StatsSampled

S3_OPERATIONS = ("put", "get", "list", "delete")
HISTORY_POINTS = 180
"""Three minutes of one-second points: enough for a sparkline as wide as a pane."""
LONG_WINDOW = 60.0
"""The average rate spans a minute: what a slow counter (a poll a minute) or the cost per hour reads by."""
GB = 1e9


class RateSeries:
    """Per-second rate of one cumulative counter: the current rate, its average over a longer window,
    and one point per step."""

    def __init__(self, step: float = 1.0, points: int = HISTORY_POINTS, window: float = 1.0,
                 long_window: float = LONG_WINDOW) -> None:
        self.step = step
        self.window = window
        self.long_window = long_window
        self.history: deque[float] = deque(maxlen=points)
        self._recent: deque[tuple[float, float]] = deque()
        self._long: deque[tuple[float, float]] = deque()
        self._bin: tuple[float, float] | None = None
        self.rate = 0.0
        self.average = 0.0
        self.total = 0.0

    def add(self, time: float, total: float) -> None:
        """Take a sample of the counter; a counter that went down is taken as restarted."""
        if self._recent and (total < self._recent[-1][1] or time < self._recent[-1][0]):
            self._recent.clear()
            self._long.clear()
            self._bin = None
        self.total = total
        self.rate = _rate_over(self._recent, time, total, self.window)
        self.average = _rate_over(self._long, time, total, self.long_window)
        if self._bin is None:
            self._bin = (time, total)
        elif time - self._bin[0] >= self.step:
            bin_time, bin_total = self._bin
            self.history.append((total - bin_total) / (time - bin_time))
            self._bin = (time, total)


def _rate_over(samples: deque[tuple[float, float]], time: float, total: float, window: float) -> float:
    samples.append((time, total))
    # Keep one sample older than the window so the rate spans at least the window.
    while len(samples) > 2 and time - samples[1][0] >= window:
        samples.popleft()
    first_time, first_total = samples[0]
    return (total - first_total) / (time - first_time) if time > first_time else 0.0


@dataclass(frozen=True, slots=True)
class Series:
    """What a pane draws for one counter."""

    rate: float
    total: float
    history: tuple[float, ...]
    average: float = 0.0
    """The rate over the last minute."""

    @property
    def slow(self) -> bool:
        """Fewer than two a second, now and over the minute: one second's count is mostly 0 or 1."""
        return self.rate < 2 and self.average < 2

    def shown_rate(self, slow: bool | None = None) -> float:
        """The rate to show: the minute's average for a slow counter (a poll every 20 s reads '1 / 20 s',
        not 0 and 1 in turns); this second's as soon as it is busy, so a burst or a stop shows at once.
        slow overrides the judgement, so bytes follow the packets they came in."""
        return self.average if (self.slow if slow is None else slow) else self.rate


@dataclass(frozen=True, slots=True)
class CostView:
    """What the node's requests cost, beside what a NAT gateway would charge for the same traffic."""

    per_hour: float
    """Dollars per hour over the last minute."""
    so_far: float
    """Dollars since the node started."""
    per_gb: float | None
    """Dollars so far per GB carried (in and out); None before any byte moved."""
    nat_per_hour: float
    nat_so_far: float
    nat_per_gb: float | None
    by_request: dict[str, float]
    """Dollars so far by "service.operation"."""
    requests: dict[str, int]
    wakeup: str
    exit_bytes: int = 0
    """Bytes through an exit node (the default routes)."""
    exit_nat: float = 0.0
    """What a NAT gateway would have charged per GB for exactly those bytes."""
    routes: tuple[tuple[str, str, int, int], ...] = ()
    """Per route: its prefix, the node it leads to, bytes sent, bytes delivered."""


EXIT_ROUTES = ("0.0.0.0/0", "::/0")
"""The routes' labels of traffic through an exit node."""


@dataclass(frozen=True, slots=True)
class StatsView:
    """Everything the counter panes show, computed off the UI thread from every snapshot."""

    time: float
    state: State
    interval: float
    manual: bool
    polls: tuple[float, ...]
    """Poll rate (1/interval) history, one point per step."""
    s3: dict[str, Series]
    s3_latency: dict[str, float]
    s3_errors: dict[str, int]
    traffic: dict[str, Series]
    """packets_in, bytes_in, packets_out, bytes_out."""
    dropped: dict[str, int]
    ignored: dict[str, int]
    missed_beats: int
    """Polls skipped because the receive pipeline was full: 0 on a healthy node."""
    events_dropped: int
    waiting_egress: int
    pace_rate: float
    """The pace the latest paced object was delivered at, in packets per second."""
    samples: int
    cost: CostView
    clock_offset: float | None = None
    """How far the node's clock is ahead of the bucket's, in seconds; None until known."""
    receives: Series = Series(0.0, 0.0, ())
    """The doorbell's long polls, the node's wake-ups when it waits on one."""

    @property
    def doorbell(self) -> bool:
        """The node waits on a doorbell instead of listing on its heartbeat."""
        return self.cost.wakeup == "sqs"


@dataclass
class StatsModel:
    """Feeds snapshots into rate series; view() gives an immutable picture of them."""

    step: float = 1.0
    _s3: dict[str, RateSeries] = field(default_factory=dict)
    _traffic: dict[str, RateSeries] = field(default_factory=dict)
    _dollars: RateSeries = field(default_factory=RateSeries)
    _nat: RateSeries = field(default_factory=RateSeries)
    _receives: RateSeries = field(default_factory=RateSeries)
    """The doorbell's long polls (SQS ReceiveMessage): each returns with bells or after 20 s of none."""
    _polls: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_POINTS))
    _poll_bin: float | None = None
    _last: StatsSampled | None = None
    _samples: int = 0

    def __post_init__(self) -> None:
        self._s3 = {op: RateSeries(self.step) for op in S3_OPERATIONS}
        self._traffic = {name: RateSeries(self.step)
                         for name in ("packets_in", "bytes_in", "packets_out", "bytes_out")}

    def add(self, sample: StatsSampled) -> None:
        """Take one snapshot into the series."""
        for op, series in self._s3.items():
            series.add(sample.time, sample.s3_ops.get(op, 0))
        for name, series in self._traffic.items():
            series.add(sample.time, getattr(sample, name))
        self._dollars.add(sample.time, sum(sample.dollars.values()))
        self._nat.add(sample.time, sample.nat_dollars)
        self._receives.add(sample.time, sample.requests.get("sqs.receive", 0))
        if self._poll_bin is None or sample.time - self._poll_bin >= self.step or sample.time < self._poll_bin:
            self._polls.append(1.0 / sample.interval if sample.interval > 0 else 0.0)
            self._poll_bin = sample.time
        self._last = sample
        self._samples += 1

    def view(self) -> StatsView | None:
        """The current picture, or None before the first snapshot."""
        last = self._last
        if last is None:
            return None
        return StatsView(
            time=last.time, state=last.state, interval=last.interval, manual=last.manual,
            polls=tuple(self._polls),
            s3={op: _series(s) for op, s in self._s3.items()},
            s3_latency=dict(last.s3_latency), s3_errors=dict(last.s3_errors),
            traffic={name: _series(s) for name, s in self._traffic.items()},
            dropped=dict(last.dropped), ignored=dict(last.ignored),
            missed_beats=last.missed_beats, events_dropped=last.events_dropped,
            waiting_egress=last.waiting_egress, pace_rate=last.pace_rate, samples=self._samples,
            cost=self._cost(last),
            clock_offset=last.clock_offset, receives=_series(self._receives),
        )

    def _cost(self, last: StatsSampled) -> CostView:
        moved = (last.bytes_in + last.bytes_out) / GB
        so_far, nat_so_far = self._dollars.total, self._nat.total
        return CostView(
            per_hour=self._dollars.average * 3600, so_far=so_far, per_gb=so_far / moved if moved else None,
            nat_per_hour=self._nat.average * 3600, nat_so_far=nat_so_far,
            nat_per_gb=nat_so_far / moved if moved else None,
            by_request=dict(last.dollars), requests=dict(last.requests), wakeup=last.wakeup,
            exit_bytes=sum(out + into for label, (_, out, into) in last.routes.items() if label in EXIT_ROUTES),
            exit_nat=last.exit_nat_dollars,
            routes=tuple((label, via, out, into) for label, (via, out, into) in last.routes.items()),
        )


def _series(series: RateSeries) -> Series:
    return Series(series.rate, series.total, tuple(series.history), series.average)
