"""The help screen: what each key does and what each pane shows."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("f", "poll faster: doubles the node's poll rate, within its bounds"),
    ("s", "poll slower: halves the rate, past the idle bound: packets wait for the inspector"),
    ("a", "back to the automatic heartbeat"),
    ("p", "pause / resume the packet table (the node keeps running)"),
    ("Enter", "full decode of the highlighted packet"),
    ("i", "inspector: the objects waiting in the bucket"),
    ("r", "inspector: list the bucket again"),
    ("w  W", "inspector: write the selected / all listed objects to a pcap file"),
    ("Ctrl+P", "command palette: every action by name"),
    ("?  Esc", "open / close this help"),
    ("q", "quit: the node removes its device and route first"),
)
PANES = (
    ("Header", "address, device, bucket, endpoint, state and uptime; degraded while S3 requests fail"),
    ("S3 operations", "requests per second by operation, totals, median latency, errors by kind"),
    ("Heartbeat", "how often the node lists its inbox: traffic speeds it up, idleness slows it down; "
                  "forced after f or s until a"),
    ("Traffic", "packets and bytes per second through the device, in and out"),
    ("Dropped / ignored", "counts by reason and the latest example; multicast and link-local are ignored"),
    ("Recent packets", "time is seconds since the node started; addresses in the node's network "
                       "are shown by their interface identifier"),
)


def help_text() -> Group:
    """The keys, then the panes, as two tables."""
    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold #f0c674", no_wrap=True)
    keys.add_column()
    for key, does in KEYS:
        keys.add_row(key, does)
    panes = Table.grid(padding=(0, 2))
    panes.add_column(style="bold", no_wrap=True)
    panes.add_column()
    for pane, shows in PANES:
        panes.add_row(pane, shows)
    return Group(
        Text("hoshino: IPv6 packets through an S3 bucket", style="bold"),
        Text("This dashboard watches one node and nudges its heartbeat.\n", style="dim"),
        Text("Keys", style="bold underline"), keys, Text(""),
        Text("Panes", style="bold underline"), panes, Text(""),
        Text("pcap files use link type 101 (raw IP): tcpdump -r FILE and Wireshark open them.", style="dim"),
    )


class HelpScreen(ModalScreen[None]):
    """Keys and panes; Escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="close-help")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text())

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Help"

    def action_close(self) -> None:
        """Back to where help was opened."""
        self.dismiss()
