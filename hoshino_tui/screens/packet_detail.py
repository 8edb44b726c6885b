"""The full decode of one packet from the table: what the agent reported, its layers and its bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Static, Tree

from agent.dissect import dissect
from agent.events import PacketSeen

from .. import formatting
from ..widgets.fitted_footer import FittedFooter
from ..widgets.hex_view import HexView, width_beside_tree
from ..widgets.layer_tree import LayerTree, Span


class PacketDetailScreen(Screen[None]):
    """Layers beside the hex dump, as in the inspector; the two share the width."""

    BINDINGS = [Binding("escape,q", "close", "Back", id="close", tooltip="Back to the dashboard")]

    def __init__(self, event: PacketSeen) -> None:
        super().__init__()
        self.event = event
        self.data = event.packet

    def compose(self) -> ComposeResult:
        yield Static(self._facts(), id="packet-facts")
        with Horizontal(id="packet-views"):
            yield LayerTree(id="packet-tree")
            yield HexView(id="packet-hex")
        yield FittedFooter()

    def on_mount(self) -> None:
        tree = self.query_one(LayerTree)
        tree.border_title = "Structure"
        self.query_one(HexView).border_title = "Bytes"
        if self.data:
            tree.show([dissect(self.data)])
        else:
            tree.show([], note="The event carries no packet bytes: only the agent's summary is known.")
        self.query_one(HexView).show(self.data)
        tree.focus()

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(HexView).styles.width = width_beside_tree(event.size.width)

    def _facts(self) -> Table:
        event = self.event
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        when = datetime.fromtimestamp(event.time, UTC).isoformat(timespec="milliseconds")
        verdict = Text(event.verdict, style="bold red" if event.verdict == "dropped" else "bold")
        if event.reason:
            verdict.append(f" ({event.reason})", style="")
        packet = Text.assemble(
            "in" if event.direction == "in" else "out", " · ", (event.protocol, "bold"), " · ",
            formatting.plural(event.length, "byte"), " · ", verdict)
        for name, value in (
            ("time", Text(when)), ("packet", packet), ("source", Text(event.source or "-")),
            ("destination", Text(event.destination or "-")), ("decode", Text(event.summary)),
            ("object key", Text(event.key or "-")),
        ):
            table.add_row(name, value)
        return table

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted[Span]) -> None:
        span = message.node.data
        if span is not None:
            self.query_one(HexView).show(self.data, span.offset, span.length)

    def action_close(self) -> None:
        """Back to the dashboard."""
        self.dismiss()
