"""Traffic: packets and bytes per second in and out, with their recent history, and the pace of delivery."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from .. import formatting
from ..sampler import StatsView
from .rate_row import RateRow

_ROWS = (
    ("packets_in", "in pkt"), ("bytes_in", "in B"), ("packets_out", "out pkt"), ("bytes_out", "out B"),
)
PACKET_CEILING = 10.0
BYTE_CEILING = 10_000.0
"""Rates that fill a sparkline while nothing is faster: a ping a second stays low."""


class TrafficPane(Vertical):
    """The traffic pane."""

    def compose(self) -> ComposeResult:
        for name, label in _ROWS:
            yield RateRow(label, BYTE_CEILING if name.startswith("bytes") else PACKET_CEILING, id=f"traffic-{name}")

    def on_mount(self) -> None:
        self.border_title = "Traffic"

    def show(self, view: StatsView) -> None:
        """Draw the latest rates."""
        for name, _ in _ROWS:
            series = view.traffic[name]
            if name.startswith("bytes"):
                # Bytes read by the same clock as their packets: a few pings a second are slow either way.
                packets = view.traffic[name.replace("bytes", "packets")]
                rate = f"{formatting.size(series.shown_rate(packets.slow))}/s"
                total = formatting.size(series.total)
            else:
                rate = formatting.rate(series.shown_rate(), "pkt", many="pkt")
                total = formatting.count(series.total)
            rate = f"{rate:>12}"
            self.query_one(f"#traffic-{name}", RateRow).show(
                series.history, (f"{rate}  total {total:>8}", rate))
        # Bundles go into the device at the pace they were sent (agent.pacing): that pace, once there is one.
        pace = formatting.rate(view.pace_rate, "pkt", many="pkt")
        self.border_subtitle = f"paced to {pace}" if view.pace_rate else ""
