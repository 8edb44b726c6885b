"""Dropped and ignored packets: counts by reason and the latest example of each."""

from __future__ import annotations

import ipaddress

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from agent.events import PacketSeen

from .packet_columns import short_address


class DropsPane(Static):
    """The dropped / ignored pane; counts come from snapshots, examples from packet events."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._counts: dict[tuple[str, str], int] = {}
        self._examples: dict[tuple[str, str], str] = {}
        self.network: ipaddress.IPv6Network | None = None
        """The node's network: its addresses are shown by their interface identifier."""

    def on_mount(self) -> None:
        self.border_title = "Dropped and ignored"
        self._draw()

    def show_counts(self, dropped: dict[str, int], ignored: dict[str, int]) -> None:
        """Take the latest counts by reason."""
        counts = {("dropped", reason): n for reason, n in dropped.items()}
        counts.update({("ignored", reason): n for reason, n in ignored.items()})
        if counts != self._counts:
            self._counts = counts
            self._draw()

    def totals(self) -> tuple[int, int]:
        """How many packets were dropped and how many ignored, over every reason."""
        dropped = sum(n for (verdict, _), n in self._counts.items() if verdict == "dropped")
        return dropped, sum(self._counts.values()) - dropped

    def note_packets(self, packets: tuple[PacketSeen, ...]) -> None:
        """Remember the latest dropped or ignored packet of each reason."""
        changed = False
        for packet in packets:
            if packet.verdict in ("dropped", "ignored"):
                self._examples[(packet.verdict, packet.reason)] = (
                    f"{packet.summary}  {short_address(packet.source, self.network) or '?'} -> "
                    f"{short_address(packet.destination, self.network)}")
                changed = True
        if changed:
            self._draw()

    def _draw(self) -> None:
        keys = sorted(set(self._counts) | set(self._examples))
        if not keys:
            self.update(Text("nothing dropped or ignored", style="green"))
            return
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False)
        table.add_column("", width=7)
        table.add_column("reason", style="bold")
        table.add_column("count", justify="right")
        table.add_column("latest", overflow="ellipsis", no_wrap=True, ratio=1)
        for verdict, reason in keys:
            style = "red" if verdict == "dropped" else "dim"
            table.add_row(Text(verdict, style=style), reason or "-",
                          str(self._counts.get((verdict, reason), 0)),
                          self._examples.get((verdict, reason), ""))
        self.update(table)
