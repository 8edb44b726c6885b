"""The heartbeat: poll interval and rate, its bounds, skipped polls, its history, and whether it is forced.

On a node that waits on a doorbell the pane says what wakes it instead (the doorbell's long polls and
the catch-up listings) and what the heartbeat still paces."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .. import formatting
from ..sampler import Series
from .trend import Trend

SKIPPED_HELP = ("Polls skipped because the receive pipeline was full (objects fetched but not yet written "
                "to the device). A healthy node shows 0; a count that keeps rising means the node cannot "
                "deliver as fast as its peers send.")
"""What the skipped count means: for the tooltip and the help screen."""
DOORBELL_HELP = ("With a doorbell the node sleeps in SQS long polls (a ReceiveMessage returns with bells, or "
                 "after 20 s with none) and lists its inbox only to catch up: every minute after traffic, "
                 "every five when idle. The heartbeat then paces only the polling of peers that cannot ring "
                 "(they have no doorbell); held by hand (f, s, h) it paces the bells too, so objects wait "
                 "in the bucket.")
"""What a doorbell node's pane shows: for the tooltip and the help screen."""
KEYS = "[b]f[/] faster  [b]s[/] slower  [b]h[/] hold 5 s  [b]a[/] auto"
REPLAY_KEYS = "[dim]recorded: the keys steer a live node[/]"


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

    def __init__(self, *, replay: bool = False, id: str | None = None) -> None:
        """replay: the heartbeat was recorded, so the keys have nothing to act on."""
        super().__init__(id=id)
        self.bounds = (0.0, 0.0)
        self.replay = replay
        self.doorbell = False
        self._interval = (0.0, False)
        self._skipped = 0

    def compose(self) -> ComposeResult:
        yield Static("interval -", id="heartbeat-now")
        yield Static("bounds -", id="heartbeat-bounds")
        yield Static("", id="heartbeat-skipped")
        yield Trend(id="heartbeat-history")
        yield Static(Text.from_markup(REPLAY_KEYS if self.replay else KEYS), id="heartbeat-keys")

    def on_mount(self) -> None:
        self.border_title = "Heartbeat"
        self.query_one("#heartbeat-skipped").tooltip = SKIPPED_HELP
        self.show_skipped(0)

    def show_wakeups(self, receives: Series, lists: Series) -> None:
        """A doorbell node: draw what wakes it, its long polls and its catch-up listings."""
        if not self.doorbell:
            self.doorbell = True
            self.border_title = "Wake-up"
            self.tooltip = DOORBELL_HELP
            self.show_interval(*self._interval)
        self.query_one("#heartbeat-now", Static).update(Text.assemble(
            ("doorbell ", "bold green"), (formatting.rate(receives.shown_rate(), "receive"), "bold")))
        # Catch-up listings come a minute or five apart: a rate over the last minute is mostly 0.
        listed = lists.shown_rate()
        self.query_one("#heartbeat-bounds", Static).update(Text.assemble(
            "catch-up ", (formatting.rate(listed, "LIST") if listed else formatting.plural(int(lists.total), "LIST"),
                          "bold"), "" if listed else " so far"))

    def show_interval(self, interval: float, manual: bool) -> None:
        """Draw the current interval, at once after a key press or from a snapshot."""
        self._interval = (interval, manual)
        if self.doorbell:
            # The third line: what the heartbeat still paces on a node that waits on a doorbell.
            text = Text("heartbeat ")
            if manual:
                text.append(f"held {formatting.period(interval)}", style="bold magenta")
                text.append(": paces the bells too")
            else:
                text.append(formatting.period(interval), style="bold")
                text.append(": peers with no bell")
            self.query_one("#heartbeat-skipped", Static).update(text)
            return
        text = Text(poll_rate(interval), style="bold")
        text.append("  ·  ", style="")
        text.append("forced" if manual else "automatic", style="bold magenta" if manual else "green")
        self.query_one("#heartbeat-now", Static).update(text)

    def show_bounds(self, fastest: float, slowest: float) -> None:
        """Draw the fastest and slowest interval."""
        self.bounds = (fastest, slowest)
        if not self.doorbell:
            self.query_one("#heartbeat-bounds", Static).update(
                f"bounds {formatting.seconds(fastest)} .. {formatting.seconds(slowest)}")

    def show_skipped(self, skipped: int) -> None:
        """Draw how many polls were skipped because the receive pipeline was full."""
        self._skipped = skipped
        if self.doorbell:
            return  # a doorbell node's polls are few: the line says what the heartbeat paces
        text = Text("polls skipped, pipeline full: ")
        text.append(str(skipped), style="bold yellow" if skipped else "bold green")
        self.query_one("#heartbeat-skipped", Static).update(text)

    def show_history(self, polls: Sequence[float]) -> None:
        """Draw the poll-rate history, oldest first: the slowest rate on the baseline, the fastest full.
        A doorbell node's history is of its wake-ups (long polls per second), on a log scale."""
        fastest, slowest = self.bounds
        if fastest <= 0 or slowest <= fastest or self.doorbell:
            values = [math.log2(1 + rate) for rate in polls]
            self.query_one(Trend).show(values, max(values, default=1.0))
            return
        # Each step of the heartbeat doubles or halves the rate: log2 gives every step the same height.
        low, span = math.log2(1 / slowest), math.log2(slowest / fastest)
        self.query_one(Trend).show([(math.log2(rate) - low) / span if rate > 0 else 0.0 for rate in polls], 1.0)
