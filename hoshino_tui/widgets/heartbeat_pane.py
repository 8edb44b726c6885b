"""The heartbeat: poll interval and rate, its bounds, skipped polls, its history, and whether it is forced."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .. import formatting
from .trend import Trend

SKIPPED_HELP = ("Polls skipped because the receive pipeline was full (objects fetched but not yet written "
                "to the device). A healthy node shows 0; a count that keeps rising means the node cannot "
                "deliver as fast as its peers send.")
"""What the skipped count means: for the tooltip and the help screen."""


def poll_rate(interval: float) -> str:
    """'16 ms · ≤62.5 polls/s', or '1 poll / 60 s' for an interval of a second or more."""
    if interval <= 0:
        return "-"
    if interval >= 1:
        return f"1 poll / {formatting.period(interval)}"
    # The interval runs from the end of one poll to the start of the next, so the rate it allows
    # is an upper bound: a poll takes a LIST's time too (the S3 pane shows the LISTs made).
    return f"{formatting.seconds(interval)} · ≤{formatting.rate(1 / interval, 'poll')}"


class HeartbeatPane(Vertical):
    """The heartbeat pane; f, s and a act on the node, this only shows the result."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bounds = (0.0, 0.0)

    def compose(self) -> ComposeResult:
        yield Static("interval -", id="heartbeat-now")
        yield Static("bounds -", id="heartbeat-bounds")
        yield Static("", id="heartbeat-skipped")
        yield Trend(id="heartbeat-history")
        yield Static(Text.from_markup("[b]f[/] faster  [b]s[/] slower  [b]a[/] automatic"), id="heartbeat-keys")

    def on_mount(self) -> None:
        self.border_title = "Heartbeat"
        self.query_one("#heartbeat-skipped").tooltip = SKIPPED_HELP
        self.show_skipped(0)

    def show_interval(self, interval: float, manual: bool) -> None:
        """Draw the current interval, at once after a key press or from a snapshot."""
        text = Text(poll_rate(interval), style="bold")
        text.append("  ·  ", style="")
        text.append("forced" if manual else "automatic", style="bold magenta" if manual else "green")
        self.query_one("#heartbeat-now", Static).update(text)

    def show_bounds(self, fastest: float, slowest: float) -> None:
        """Draw the fastest and slowest interval."""
        self.bounds = (fastest, slowest)
        self.query_one("#heartbeat-bounds", Static).update(
            f"bounds {formatting.seconds(fastest)} .. {formatting.seconds(slowest)}")

    def show_skipped(self, skipped: int) -> None:
        """Draw how many polls were skipped because the receive pipeline was full."""
        text = Text("polls skipped, pipeline full: ")
        text.append(str(skipped), style="bold yellow" if skipped else "bold green")
        self.query_one("#heartbeat-skipped", Static).update(text)

    def show_history(self, polls: Sequence[float]) -> None:
        """Draw the poll-rate history, oldest first: the slowest rate on the baseline, the fastest full."""
        fastest, slowest = self.bounds
        if fastest <= 0 or slowest <= fastest:
            values = [math.log2(1 + rate) for rate in polls]
            self.query_one(Trend).show(values, max(values, default=1.0))
            return
        # Each step of the heartbeat doubles or halves the rate: log2 gives every step the same height.
        low, span = math.log2(1 / slowest), math.log2(slowest / fastest)
        self.query_one(Trend).show([(math.log2(rate) - low) / span if rate > 0 else 0.0 for rate in polls], 1.0)
