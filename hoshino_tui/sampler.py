"""Turns the agent's cumulative counter snapshots into rates and short histories for the panes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agent.events import State, StatsSampled

S3_OPERATIONS = ("put", "get", "list", "delete")
HISTORY_POINTS = 180
"""Three minutes of one-second points: enough for a sparkline as wide as a pane."""


class RateSeries:
    """Per-second rate of one cumulative counter: the current rate and one point per step."""

    def __init__(self, step: float = 1.0, points: int = HISTORY_POINTS, window: float = 1.0) -> None:
        self.step = step
        self.window = window
        self.history: deque[float] = deque(maxlen=points)
        self._recent: deque[tuple[float, int]] = deque()
        self._bin: tuple[float, int] | None = None
        self.rate = 0.0
        self.total = 0

    def add(self, time: float, total: int) -> None:
        """Take a sample of the counter; a counter that went down is taken as restarted."""
        if self._recent and (total < self._recent[-1][1] or time < self._recent[-1][0]):
            self._recent.clear()
            self._bin = None
        self.total = total
        self._recent.append((time, total))
        # Keep one sample older than the window so the rate spans at least the window.
        while len(self._recent) > 2 and time - self._recent[1][0] >= self.window:
            self._recent.popleft()
        first_time, first_total = self._recent[0]
        self.rate = (total - first_total) / (time - first_time) if time > first_time else 0.0
        if self._bin is None:
            self._bin = (time, total)
        elif time - self._bin[0] >= self.step:
            bin_time, bin_total = self._bin
            self.history.append((total - bin_total) / (time - bin_time))
            self._bin = (time, total)


@dataclass(frozen=True, slots=True)
class Series:
    """What a pane draws for one counter."""

    rate: float
    total: int
    history: tuple[float, ...]


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
    events_dropped: int
    waiting_egress: int
    samples: int


@dataclass
class StatsModel:
    """Feeds snapshots into rate series; view() gives an immutable picture of them."""

    step: float = 1.0
    _s3: dict[str, RateSeries] = field(default_factory=dict)
    _traffic: dict[str, RateSeries] = field(default_factory=dict)
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
            waiting_egress=last.waiting_egress, samples=self._samples,
        )


def _series(series: RateSeries) -> Series:
    return Series(series.rate, series.total, tuple(series.history))
