"""The one-line bar where a packet filter is typed: Enter applies it, Esc cancels, a mistake is named."""

from __future__ import annotations

import ipaddress

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from ..filtering import FilterError, PacketFilter, parse_filter

PLACEHOLDER = "udp · port 8081 · host ::b · dropped · not icmp   (Enter applies)"
"""Short enough for 80 columns; the footer shows that Esc cancels."""


class FilterBar(Horizontal):
    """Hidden until opened; posts Applied with a parsed filter, or Cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel-filter", tooltip="Close the filter bar")]
    DEFAULT_CSS = """
    FilterBar { height: 1; display: none; background: $panel; }
    FilterBar.-open { display: block; }
    FilterBar > .filter-prompt { width: auto; padding: 0 1; color: $accent; text-style: bold; }
    FilterBar > Input { width: 1fr; height: 1; border: none; padding: 0; background: $panel; }
    FilterBar > Input:focus { border: none; }
    FilterBar > .filter-error { width: auto; max-width: 50%; padding: 0 1; color: $error; }
    """

    class Applied(Message):
        """A filter was typed and parsed."""

        def __init__(self, packet_filter: PacketFilter) -> None:
            super().__init__()
            self.filter = packet_filter

    class Cancelled(Message):
        """The bar was closed without applying anything."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.network: ipaddress.IPv6Network | None = None

    def compose(self) -> ComposeResult:
        yield Label("/", classes="filter-prompt")
        yield Input(placeholder=PLACEHOLDER, id="filter-input")
        yield Label("", classes="filter-error")

    def open(self, text: str) -> None:
        """Show the bar with text to edit and take the focus."""
        self.add_class("-open")
        self._error("")
        field = self.query_one(Input)
        field.value = text
        field.cursor_position = len(text)
        field.focus()

    def close(self) -> None:
        """Hide the bar."""
        self.remove_class("-open")

    def _error(self, message: str) -> None:
        self.query_one(".filter-error", Label).update(Text(message))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            packet_filter = parse_filter(event.value, self.network)
        except FilterError as error:
            self._error(str(error))
            return
        self.close()
        self.post_message(self.Applied(packet_filter))

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._error("")

    def action_cancel(self) -> None:
        """Close the bar; the filter in force stays."""
        self.close()
        self.post_message(self.Cancelled())
