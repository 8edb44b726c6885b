"""What the node's requests cost so far and per hour, beside what a NAT gateway would charge."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .. import formatting
from ..sampler import CostView

COST_HELP = ("An estimate from the node's price table: S3 PUT and LIST $0.005 per 1,000, GET $0.0004 per 1,000, "
             "DELETE free, SQS $0.40 per million. Per hour is the last minute's pace; since start counts from "
             "the node's start; per GB divides by the bytes carried in and out. The NAT gateway column is what "
             "$0.045 an hour plus $0.045 per GB would have cost for the same traffic and time.")
"""What the cost pane's figures mean: for the tooltip and the help screen."""


def _money(value: float | None) -> str:
    return "-" if value is None else formatting.dollars(value)


def cost_table(cost: CostView) -> Table:
    """Per hour, since start and per GB, for this node and for a NAT gateway."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row("", Text("hoshino", style="bold"), Text("NAT gw", style="bold"))
    table.add_row("per hour", _money(cost.per_hour), _money(cost.nat_per_hour))
    table.add_row("since start", _money(cost.so_far), _money(cost.nat_so_far))
    table.add_row("per GB", _money(cost.per_gb), _money(cost.nat_per_gb))
    if cost.exit_bytes:  # what went through an exit node, priced per GB as a NAT gateway would
        table.add_row(f"via exit {formatting.size(cost.exit_bytes)}", "", _money(cost.exit_nat))
    return table


def routes_text(cost: CostView) -> Text:
    """The routes beyond the node's own network, one line each: prefix -> node, bytes sent and delivered."""
    text = Text()
    for label, via, out, into in cost.routes:
        if via == "each node":
            continue
        if text:
            text.append("\n")
        text.append(label, style="bold")
        text.append(f" -> {via} ", style="dim")
        text.append(f"↑{formatting.size(out)} ↓{formatting.size(into)}")
    return text


def biggest_item(cost: CostView) -> Text:
    """Which request costs the most so far, and its share."""
    paid = {key: dollars for key, dollars in cost.by_request.items() if dollars > 0}
    if not paid or cost.so_far <= 0:
        return Text("no billable requests yet", style="dim")
    key = max(paid, key=lambda name: paid[name])
    requests = cost.requests.get(key, 0)
    text = Text("mostly ", style="dim")
    text.append(key, style="bold")
    text.append(f" {paid[key] / cost.so_far:.0%}", style="")
    text.append(f" ({formatting.plural(requests, 'request')})" if requests else "", style="dim")
    return text


class CostPane(Vertical):
    """The cost pane: the figures, then the request that costs most (hidden when space is short)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cost: CostView | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("no cost figures from the node yet", style="dim"), id="cost-table")
        yield Static("", id="cost-item")

    def on_mount(self) -> None:
        self.border_title = "Cost (estimate)"
        self.tooltip = COST_HELP

    def show(self, cost: CostView) -> None:
        """Draw the latest figures."""
        self.cost = cost
        self.border_subtitle = f"wake-up: {'SQS doorbell' if cost.wakeup == 'sqs' else 'polling'}"
        if not cost.requests and cost.so_far == 0 and cost.nat_so_far == 0:
            self.query_one("#cost-table", Static).update(Text("no cost figures from the node yet", style="dim"))
            self.query_one("#cost-item", Static).update("")
            return
        self.query_one("#cost-table", Static).update(cost_table(cost))
        routes = routes_text(cost)
        item = biggest_item(cost)
        self.query_one("#cost-item", Static).update(Text.assemble(item, "\n", routes) if routes else item)
