"""The network screen: every node this one knows, who sends whom what, and what the network costs a day.

Figures come from the nodes' own metrics pages, this node's and its peers' read through the tunnel (what a
member can see, nothing more), by a worker that never blocks the screen (hoshino_tui.network). Credentials
that may list the whole bucket (an operator's) add every inbox's backlog, from one listing a reading; with
the inspector alone (--inspect: no node, no pages) that is all the screen shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from agent.config import Config
from agent.prices import PriceTable
from agent.scrape import ScrapeError
from agent.status import PeerLine

from ..bucket import MAX_KEYS, BucketObject
from ..formatting import age, count, dollars, plural, size
from ..messages import InboxesListed, NetworkRead
from ..network import NOT_A_NODE_KEY, PERIOD, InboxLine, NetworkHistory, NetworkSource, NetworkView, build, inboxes
from ..widgets.fitted_footer import FittedFooter

QUIET_AFTER = 60.0
"""A peer last heard from longer ago than this is shown as quiet (its page may still answer)."""
NODE_COLUMNS = ("Name", "Address", "Routes", "Heard", "Sent", "Received", "Req/day", "$/day", "Metrics page")
NARROW = 120
"""Below this many columns the nodes' table leaves out addresses and routes: a node goes by its name."""
NARROW_LEFT_OUT = (1, 2)
PAIR_COLUMNS = ("From", "To", "Sent", "Packets")
INBOX_COLUMNS = ("Inbox", "Waiting", "Bytes", "Oldest")
STALE_WAIT = Config.max_age
"""An inbox whose oldest object has waited longer than this (the default --max-age) shows it in yellow:
past it, the object will be refused as stale."""
LIST_RETRY = 60.0
"""Seconds before a bucket that refused its listing (a member's credentials, say) is asked again."""
ListBucket = Callable[[], list[BucketObject]]
"""One listing of the whole bucket (under the key prefix), each key parsed."""


class NetworkScreen(Screen[None]):
    """This node and its peers as their pages tell, read every few seconds."""

    BINDINGS = [
        Binding("r", "refresh", "Read now", id="read-network", tooltip="Read every node's metrics page again now"),
        Binding("escape", "close", "Back", id="close-network", tooltip="Back to the dashboard"),
    ]

    def __init__(self, source: NetworkSource | None, prices: PriceTable, list_bucket: ListBucket | None = None,
                 period: float | None = None) -> None:
        super().__init__()
        self.source = source
        self.prices = prices
        self.list_bucket = list_bucket
        self.period = period or (source.period if source else PERIOD)
        self.inboxes: list[InboxLine] | str | None = None
        """The last listing by inbox, or why the bucket could not be listed; None: not listed yet."""
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
            with Vertical(id="network-left"):
                yield DataTable(id="network-pairs", cursor_type="none")
                yield DataTable(id="network-inboxes", cursor_type="none")
            yield Static(id="network-cost")
        yield FittedFooter()

    def on_mount(self) -> None:
        nodes = self.query_one("#network-nodes", DataTable)
        nodes.border_title = "Nodes"
        pairs = self.query_one("#network-pairs", DataTable)
        pairs.border_title = "Who talks to whom"
        pairs.add_columns(*PAIR_COLUMNS)
        self.query_one("#network-cost", Static).border_title = "Cost per day"
        inbox_table = self.query_one("#network-inboxes", DataTable)
        inbox_table.border_title = "Inboxes (the whole bucket)"
        inbox_table.add_columns(*INBOX_COLUMNS)
        inbox_table.display = self.list_bucket is not None
        for pages_only in ("#network-nodes", "#network-pairs", "#network-cost"):
            self.query_one(pages_only).display = self.source is not None
        self._read_pages()

    def on_unmount(self) -> None:
        self._closing = True
        self._wake.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="network",
          description="read the nodes' metrics pages")
    def _read_pages(self) -> None:
        """Read every page, post what was read, wait a period (or a refresh) after the reading ends."""
        worker = get_current_worker()
        list_again_at = 0.0
        while not (self._closing or worker.is_cancelled):
            if self.source is not None:
                try:
                    local, probed = self.source.read()
                except Exception as error:  # no namespace, no permission to enter it: said on the screen
                    local, probed = ScrapeError(str(error) or type(error).__name__), {}
                self.post_message(NetworkRead(local, probed))
            if self.list_bucket is not None and time.monotonic() >= list_again_at:
                try:
                    listed: list[InboxLine] | str = inboxes(self.list_bucket())
                except Exception as error:  # credentials for one inbox only (AccessDenied), an S3 down: said,
                    listed = str(error) or type(error).__name__  # and asked again only now and then
                    list_again_at = time.monotonic() + LIST_RETRY
                self.post_message(InboxesListed(listed))
            self._wake.wait(self.period)
            self._wake.clear()

    def on_network_read(self, message: NetworkRead) -> None:
        self.readings += 1
        if isinstance(message.local, ScrapeError):
            where = self.source.local_url if self.source is not None else "?"
            self.problem = f"this node's metrics page at {where} does not answer ({message.local})"
        else:
            self.problem = ""
            self.view = build(message.local, message.probed, self.prices, self.history)
            self._draw(self.view)
        self.query_one("#network-status", Static).update(self._title())

    def on_inboxes_listed(self, message: InboxesListed) -> None:
        self.inboxes = message.inboxes
        table = self.query_one("#network-inboxes", DataTable)
        table.clear()
        if isinstance(message.inboxes, str):
            table.border_subtitle = f"cannot list: {message.inboxes}"[:60]
        else:
            waiting = sum(line.waiting for line in message.inboxes)
            first = f", the first {MAX_KEYS:,} listed" if waiting >= MAX_KEYS else ""
            table.border_subtitle = f"{plural(waiting, 'object')} waiting{first}"
            now = self.view.read_at if self.view is not None else self._now()
            for line in message.inboxes:
                oldest = "-" if line.oldest is None else f"{age(now - line.oldest)} ago"
                name = line.destination if line.destination == NOT_A_NODE_KEY else self._name_of(line.destination)
                table.add_row(Text(name, style="dim" if line.destination == NOT_A_NODE_KEY else ""),
                              Text(count(line.waiting), justify="right"), Text(size(line.bytes), justify="right"),
                              Text(oldest, style="yellow" if line.oldest is not None
                                   and now - line.oldest > STALE_WAIT else ""))
        if self.source is None:
            self.readings += 1
            self.query_one("#network-status", Static).update(self._title())

    def _name_of(self, address: str) -> str:
        return self.view.name_of(address) if self.view is not None else address

    def _now(self) -> float:
        return self.source.clock() if self.source is not None else time.time()

    def _title(self) -> Text:
        parts: list[str | tuple[str, str]] = [(" network ", "bold reverse")]
        view = self.view
        if self.source is None:
            parts.append("  the bucket's inboxes, as an operator's credentials list them")
            parts.append((f"  every {self.period:g} s", "dim"))
        elif self.problem:
            parts.append((f"  {self.problem}", "bold red"))
        elif view is None:
            parts.append(("  reading the nodes' metrics pages...", "dim"))
        else:
            parts.append(f"  {plural(view.nodes, 'node')} · {view.answering} answering")
            if silent := len(view.silent):
                parts.append((f" · {silent} silent", "bold red"))
            read = time.strftime("%H:%M:%S", time.gmtime(view.read_at))
            parts.append((f"  read {read} UTC, every {self.period:g} s", "dim"))
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
        saved = view.nat_per_subnet_day - view.dollars_per_day
        lines: list[str | tuple[str, str]] = [
            f"{view.answering} of {view.nodes} nodes answer\n",
            "their requests  ", (dollars(view.dollars_per_day), "bold"), "\n",
            "NAT gateways:\n",
            f" {view.nodes}, one a node  ", (dollars(view.nat_per_day), "bold"), "\n",
            f" {view.subnets}, one a subnet  ", (dollars(view.nat_per_subnet_day), "bold"),
            (f"\n  {dollars(view.nat_per_node)} a gateway + ${nat_rate:g}/GB\n", "dim"),
            "saves " if saved >= 0 else "costs ", (dollars(abs(saved)), "bold green" if saved >= 0 else "bold red"),
            f"{' against ' if saved >= 0 else ' more than '}{plural(view.subnets, 'gateway')}",
        ]
        if view.silent:
            lines.append((f"\n{len(view.silent)} silent, not counted", "red"))
        return Text.assemble(*lines)

    def action_refresh(self) -> None:
        """Read every page again now, the silent peers' too."""
        if self.source is not None:
            self.source.silent.clear()
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
