"""The heartbeat: poll interval and rate, its bounds, its history, and whether it is forced."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from .. import formatting


class HeartbeatPane(Vertical):
    """The heartbeat pane; f, s and a act on the node, this only shows the result."""

    def compose(self) -> ComposeResult:
        yield Static("interval -", id="heartbeat-now")
        yield Static("bounds -", id="heartbeat-bounds")
        yield Sparkline([0.0], id="heartbeat-history")
        yield Static(Text.from_markup("[b]f[/] faster  [b]s[/] slower  [b]a[/] automatic"), id="heartbeat-keys")

    def on_mount(self) -> None:
        self.border_title = "Heartbeat"

    def show_interval(self, interval: float, manual: bool) -> None:
        """Draw the current interval, at once after a key press or from a snapshot."""
        text = Text()
        # The interval runs from the end of one poll to the start of the next, so the rate it allows
        # is an upper bound: a poll takes a LIST's time too (the S3 pane shows the LISTs made).
        text.append(formatting.seconds(interval), style="bold")
        text.append(f"  ·  ≤{1 / interval if interval > 0 else 0:.1f} polls/s  ·  ")
        text.append("forced" if manual else "automatic", style="bold magenta" if manual else "green")
        self.query_one("#heartbeat-now", Static).update(text)

    def show_bounds(self, fastest: float, slowest: float, missed: int = 0) -> None:
        """Draw the fastest and slowest interval and how many beats were missed."""
        self.query_one("#heartbeat-bounds", Static).update(
            f"bounds {formatting.seconds(fastest)} .. {formatting.seconds(slowest)}  ·  missed {missed}")

    def show_history(self, polls: Sequence[float]) -> None:
        """Draw the poll-rate history, oldest first, on a log scale."""
        # Each step of the heartbeat doubles or halves the rate: log2 gives every step the same height.
        self.query_one(Sparkline).data = [math.log2(rate) for rate in polls if rate > 0] or [0.0]
