"""The network screen: every node this one knows, who sends whom what, and what the network costs a day.

Figures come from the nodes' own metrics pages, this node's and its peers' read through the tunnel (what a
member can see, nothing more), by a worker that never blocks the screen (hoshino_tui.network)."""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from agent.prices import PriceTable
from agent.scrape import ScrapeError
from agent.status import PeerLine

from ..formatting import age, count, dollars, size
from ..messages import NetworkRead
from ..network import NetworkHistory, NetworkSource, NetworkView, build
from ..widgets.fitted_footer import FittedFooter

QUIET_AFTER = 60.0
"""A peer last heard from longer ago than this is shown as quiet (its page may still answer)."""
NODE_COLUMNS = ("Name", "Address", "Routes", "Heard", "Sent", "Received", "Req/day", "$/day", "Metrics page")
NARROW = 120
"""Below this many columns the nodes' table leaves out addresses and routes: a node goes by its name."""
NARROW_LEFT_OUT = (1, 2)
PAIR_COLUMNS = ("From", "To", "Sent", "Packets")


class NetworkScreen(Screen[None]):
    """This node and its peers as their pages tell, read every few seconds."""

    BINDINGS = [
        Binding("r", "refresh", "Read now", id="read-network", tooltip="Read every node's metrics page again now"),
        Binding("escape", "close", "Back", id="close-network", tooltip="Back to the dashboard"),
    ]

    def __init__(self, source: NetworkSource, prices: PriceTable) -> None:
        super().__init__()
        self.source = source
        self.prices = prices
        self.history = NetworkHistory()
        self.view: NetworkView | None = None
        self.problem = ""
        self.readings = 0
        self._wake = threading.Event()
        self._closing = False
        self._narrow = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="network-status")
        yield DataTable(id="network-nodes", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="network-bottom"):
            yield DataTable(id="network-pairs", cursor_type="none")
            yield Static(id="network-cost")
        yield FittedFooter()

    def on_mount(self) -> None:
        nodes = self.query_one("#network-nodes", DataTable)
        nodes.border_title = "Nodes"
        pairs = self.query_one("#network-pairs", DataTable)
        pairs.border_title = "Who talks to whom"
        pairs.add_columns(*PAIR_COLUMNS)
        self.query_one("#network-cost", Static).border_title = "Cost per day"
        self._read_pages()

    def on_unmount(self) -> None:
        self._closing = True
        self._wake.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="network",
          description="read the nodes' metrics pages")
    def _read_pages(self) -> None:
        """Read every page, post what was read, wait a period (or a refresh) after the reading ends."""
        worker = get_current_worker()
        while not (self._closing or worker.is_cancelled):
            try:
                local, probed = self.source.read()
            except Exception as error:  # no namespace, no permission to enter it: said on the screen
                local, probed = ScrapeError(str(error) or type(error).__name__), {}
            self.post_message(NetworkRead(local, probed))
            self._wake.wait(self.source.period)
            self._wake.clear()

    def on_network_read(self, message: NetworkRead) -> None:
        self.readings += 1
        if isinstance(message.local, ScrapeError):
            self.problem = f"this node's metrics page at {self.source.local_url} does not answer ({message.local})"
        else:
            self.problem = ""
            self.view = build(message.local, message.probed, self.prices, self.history)
            self._draw(self.view)
        self.query_one("#network-status", Static).update(self._title())

    def _title(self) -> Text:
        parts: list[str | tuple[str, str]] = [(" network ", "bold reverse")]
        view = self.view
        if self.problem:
            parts.append((f"  {self.problem}", "bold red"))
        elif view is None:
            parts.append(("  reading the nodes' metrics pages...", "dim"))
        else:
            parts.append(f"  {view.nodes} node{'s' if view.nodes != 1 else ''} · {view.answering} answering")
            if silent := len(view.silent):
                parts.append((f" · {silent} silent", "bold red"))
            read = time.strftime("%H:%M:%S", time.gmtime(view.read_at))
            parts.append((f"  read {read} UTC, every {self.source.period:g} s", "dim"))
        return Text.assemble(*parts)

    def on_resize(self) -> None:
        if self.view is not None and (self.size.width < NARROW) != self._narrow:
            self._draw(self.view)

    def _draw(self, view: NetworkView) -> None:
        nodes = self.query_one("#network-nodes", DataTable)
        cursor = nodes.cursor_row
        narrow = self.size.width < NARROW
        nodes.clear(columns=narrow != self._narrow or not nodes.columns)
        self._narrow = narrow
        if not nodes.columns:
            nodes.add_columns(*(name for index, name in enumerate(NODE_COLUMNS)
                                if not (narrow and index in NARROW_LEFT_OUT)))
        for line in [view.node, *view.peers]:
            cells = self._cells(line, view)
            nodes.add_row(*(cell for index, cell in enumerate(cells) if not (narrow and index in NARROW_LEFT_OUT)),
                          key=line.peer)
        if nodes.row_count:
            nodes.move_cursor(row=min(cursor, nodes.row_count - 1))
        pairs = self.query_one("#network-pairs", DataTable)
        pairs.clear()
        for pair in view.pairs:
            pairs.add_row(view.name_of(pair.sender), view.name_of(pair.receiver),
                          Text(size(pair.bytes), justify="right"), Text(count(pair.packets), justify="right"))
        self.query_one("#network-cost", Static).update(self._cost(view))

    def _cells(self, line: PeerLine, view: NetworkView) -> list[Text]:
        silent = line.metrics.startswith("unreachable")
        quiet = line.peer != view.address and (line.last_heard is None or view.read_at - line.last_heard > QUIET_AFTER)
        style = "bold red" if silent else ""
        heard = "-" if line.peer == view.address else "never" if line.last_heard is None \
            else f"{age(view.read_at - line.last_heard)} ago"
        cells = [
            Text(line.name or view.name_of(line.peer), style=style or ("bold" if line.peer == view.address else "")),
            Text(line.peer, style=style),
            Text(",".join(line.routes) or "-", style="dim" if not line.routes else ""),
            Text(heard, style=style or ("yellow" if quiet else "")),
            Text(size(line.bytes_out), justify="right"),
            Text(size(line.bytes_in), justify="right"),
            Text(count(round(line.requests_per_day)), justify="right"),
            Text(dollars(line.dollars_per_day), justify="right"),
            Text(_answer(line.metrics), style=style or ("green" if line.metrics == "answers" else "dim")),
        ]
        return cells

    def _cost(self, view: NetworkView) -> Text:
        nat_rate = self.prices.nat_gateway_per_gb
        saved = view.nat_per_day - view.dollars_per_day
        lines: list[str | tuple[str, str]] = [
            f"{view.answering} of {view.nodes} nodes answer\n",
            "their requests  ", (dollars(view.dollars_per_day), "bold"), "\n",
            f"{view.nodes} NAT gateway{'s' if view.nodes != 1 else ''}  ", (dollars(view.nat_per_day), "bold"),
            (f"\n  {dollars(view.nat_per_node)} a node + ${nat_rate:g}/GB\n", "dim"),
            ("saves " if saved >= 0 else "costs more by ", ""), (dollars(abs(saved)), "bold green" if saved >= 0
                                                                   else "bold red"),
        ]
        if view.silent:
            lines.append((f"\n{len(view.silent)} silent, not counted", "red"))
        return Text.assemble(*lines)

    def action_refresh(self) -> None:
        """Read every page again now."""
        self._wake.set()

    def action_close(self) -> None:
        """Back to the dashboard."""
        self.dismiss()



def _answer(metrics: str) -> str:
    """'✓ answers', '✗ timed out' (why a page did not answer), or as it is (this node)."""
    if metrics == "answers":
        return "✓ answers"
    if metrics.startswith("unreachable"):
        return "✗ " + metrics.removeprefix("unreachable").strip(" ()")
    return metrics
