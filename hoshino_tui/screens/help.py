"""The help screen: the keys, read from the screens' bindings, then what each pane shows and the filter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

from ..filtering import FILTER_HELP
from ..widgets.cost_pane import COST_HELP
from ..widgets.heartbeat_pane import DOORBELL_HELP, SKIPPED_HELP

KEY_STYLE = "bold #f0c674"
KEY_COLUMN = 7
KeySection = tuple[str, Sequence[BindingType]]
"""A heading and the bindings under it, as a screen or widget declares them."""

_KEY_NAMES = {
    "question_mark": "?", "escape": "Esc", "enter": "Enter", "slash": "/", "up": "↑", "down": "↓",
    "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "tab": "Tab",
}
PANES = (
    ("Header", "address, device, bucket, endpoint, state and uptime; degraded while S3 requests fail. A replay "
               "is marked REPLAY, its state replaying or ended, its time how far into the recording it is"),
    ("S3 requests", "requests per second by operation (a slow one as '1 / 20 s'), totals, median latency; "
                    "errors by kind in the border"),
    ("Heartbeat", "how often the node lists its inbox: traffic speeds it up, idleness slows it down; "
                  "forced after f or s until a; h holds it at one poll every 5 s, so objects wait in the "
                  "bucket where the inspector sees them. The sparkline runs from the slowest bound (baseline) "
                  "to the fastest (full)"),
    ("Wake-up", DOORBELL_HELP),
    ("Polls skipped", SKIPPED_HELP),
    ("Traffic", "packets and bytes per second through the device, in and out"),
    ("Cost (estimate)", COST_HELP),
    ("Dropped / ignored", "counts by reason and the latest example; multicast and link-local are ignored. "
                          "On a small screen the pane hides and its totals go in the traffic pane's border"),
    ("Recent packets", "time is seconds since the node started; addresses in the node's network are shown "
                       "by their interface identifier unless there is room for them in full"),
)


def key_name(key: str) -> str:
    """How help writes a key: 'Esc', '?', 'Ctrl+P', 'W'."""
    *modifiers, last = key.split("+")
    name = _KEY_NAMES.get(last) or (last if len(last) == 1 else format_key(last).title())
    return "+".join([*(modifier.title() for modifier in modifiers), name.upper() if modifiers else name])


def key_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) for bindings: one row per action, actions on the same keys merged,
    a widget's plain moving keys (out of the footer, with no tooltip) gathered on one row."""
    actions: dict[str, list[Binding]] = {}
    for binding in Binding.make_bindings(bindings):
        actions.setdefault(binding.action, []).append(binding)
    shown: dict[str, tuple[list[str], list[str]]] = {}
    quiet_keys: list[str] = []
    quiet_names: list[str] = []
    for group in actions.values():
        first = group[0]
        keys = " ".join(first.key_display or key_name(binding.key) for binding in group)
        if not first.show and not first.tooltip:
            quiet_keys.append(keys)
            quiet_names.append(first.description.lower())
            continue
        names, tips = shown.setdefault(keys, ([], []))
        names.append(first.description)
        if first.tooltip:
            tips.append(first.tooltip)
    rows = [(keys, " / ".join(names) + (f": {' / '.join(tips)}" if tips else ""))
            for keys, (names, tips) in shown.items()]
    if quiet_keys:
        rows.append(("  ".join(quiet_keys), "move: " + ", ".join(quiet_names)))
    return rows


def help_text(sections: Sequence[KeySection]) -> Group:
    """The keys by screen, then the panes, then the filter language."""
    parts: list[Text | Table] = [
        Text("hoshino: IPv6 packets through an S3 bucket", style="bold"),
        Text("This dashboard watches one node and nudges its heartbeat.\n", style="dim"),
    ]
    for heading, bindings in sections:
        rows = key_rows(bindings)
        if not rows:
            continue
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style=KEY_STYLE, no_wrap=True, min_width=KEY_COLUMN)
        keys.add_column()
        for key, does in rows:
            if len(key) > KEY_COLUMN:  # a long list of keys goes with its text, not widening the column
                keys.add_row("", Text.assemble((key, KEY_STYLE), "  ", does))
            else:
                keys.add_row(key, does)
        parts.extend([Text(f"Keys: {heading}", style="bold underline"), keys, Text("")])
    panes = Table.grid(padding=(0, 2))
    panes.add_column(style="bold", no_wrap=True)
    panes.add_column()
    for pane, shows in PANES:
        panes.add_row(pane, shows)
    language = Table.grid(padding=(0, 2))
    language.add_column(style=KEY_STYLE, no_wrap=True)
    language.add_column()
    for words, means in FILTER_HELP:
        language.add_row(words, means)
    parts.extend([
        Text("Panes", style="bold underline"), panes, Text(""),
        Text("Filter (/): every word must match; Esc clears", style="bold underline"), language, Text(""),
        Text("pcap files use link type 101 (raw IP): tcpdump -r FILE and Wireshark open them.", style="dim"),
    ])
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Keys and panes; Escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="close-help", tooltip="Close this help")]

    def __init__(self, sections: Sequence[KeySection] = ()) -> None:
        super().__init__()
        self.sections = tuple(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text(self.sections), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Help"
        self.query_one("#help-box").border_subtitle = "Esc closes · ↑↓ scroll"

    def action_close(self) -> None:
        """Back to where help was opened."""
        self.dismiss()
