"""Traffic: packets and bytes per second in and out, with their recent history."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from .. import formatting
from ..sampler import StatsView
from .rate_row import RateRow

_ROWS = (
    ("packets_in", "in pkt"), ("bytes_in", "in B"), ("packets_out", "out pkt"), ("bytes_out", "out B"),
)


class TrafficPane(Vertical):
    """The traffic pane."""

    def compose(self) -> ComposeResult:
        for name, label in _ROWS:
            yield RateRow(label, id=f"traffic-{name}")

    def on_mount(self) -> None:
        self.border_title = "Traffic"

    def show(self, view: StatsView) -> None:
        """Draw the latest rates."""
        for name, _ in _ROWS:
            series = view.traffic[name]
            if name.startswith("bytes"):
                figures = f"{formatting.size(series.rate):>9}/s  total {formatting.size(series.total):>8}"
            else:
                figures = f"{series.rate:7.1f} pkt/s  total {formatting.count(series.total):>6}"
            self.query_one(f"#traffic-{name}", RateRow).show(series.history, figures)
