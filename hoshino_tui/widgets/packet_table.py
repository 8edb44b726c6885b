"""Recent packets, newest at the bottom: bounded, following the newest row unless paused."""

from __future__ import annotations

import ipaddress
from collections import deque

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from agent.events import PacketSeen

MAX_ROWS = 500
# Info comes last, as in Wireshark: it is the column that may run off the right edge.
_COLUMNS = (("No.", 6), ("Time", 8), ("Dir", 3), ("Source", 21), ("Destination", 21), ("Proto", 6),
            ("Len", 5), ("Verdict", 9), ("Reason", 15), ("Info", 80))
# Wireshark's colouring rules, as foreground colours that read on a dark terminal.
_PROTOCOL_STYLE = {"ICMPv6": Style(color="#f0a0ff"), "TCP": Style(color="#b0a8ff"), "UDP": Style(color="#80c8ff")}
_VERDICT_STYLE = {"sent": Style(color="green"), "delivered": Style(color="green"), "ignored": Style(dim=True),
                  "dropped": Style(color="red", bold=True)}
_PLAIN = Style()


def short_address(text: str, network: ipaddress.IPv6Network | None) -> str:
    """Inside the node's network the prefix says nothing: show '::' and the interface identifier."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return text
    if network is not None and network.prefixlen == 64 and address in network:
        return ipaddress.IPv6Address(int(address) & ((1 << 64) - 1)).compressed
    return address.compressed


def _cell(text: str, width: int) -> str:
    return (text[:width - 1] + "…" if len(text) > width else text.ljust(width)) + " "


class PacketTable(ScrollView, can_focus=True):
    """Draws only the rows in view (the Line API), so a flood of packets costs one screenful.

    Keeps the last max_rows packets; paused, it keeps collecting but stops moving.
    """

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]
    COMPONENT_CLASSES = {"packet-table--header", "packet-table--cursor", "packet-table--even"}
    DEFAULT_CSS = """
    PacketTable > .packet-table--header { text-style: bold; background: $panel; }
    PacketTable > .packet-table--cursor { background: $accent 40%; text-style: bold; }
    PacketTable:focus > .packet-table--cursor { background: $accent 70%; }
    PacketTable > .packet-table--even { background: $surface-lighten-1 30%; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)

    def __init__(self, max_rows: int = MAX_ROWS, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self.paused = False
        self.origin: float | None = None
        """Time zero of the Time column (the node's start), as in Wireshark."""
        self.network: ipaddress.IPv6Network | None = None
        self._buffer: deque[tuple[int, PacketSeen]] = deque(maxlen=max_rows)
        self._rows: list[tuple[int, PacketSeen]] = []
        self._serial = 0
        self._width = sum(width + 1 for _, width in _COLUMNS)

    def on_mount(self) -> None:
        self.border_title = "Recent packets"

    @property
    def seen(self) -> int:
        """How many packets have arrived since the table was made."""
        return self._serial

    @property
    def row_count(self) -> int:
        """Rows on show."""
        return len(self._rows)

    def add_packets(self, packets: tuple[PacketSeen, ...]) -> None:
        """Take a batch, oldest first; show it unless paused."""
        if self.origin is None and packets:
            self.origin = packets[0].time
        for packet in packets:
            self._serial += 1
            self._buffer.append((self._serial, packet))
        if not self.paused and packets:
            self._show_buffer()

    def pause(self) -> None:
        """Freeze the view; packets keep being collected."""
        self.paused = True
        self.border_subtitle = "paused: p resumes"

    def resume(self) -> None:
        """Show what arrived meanwhile and follow the newest again."""
        self.paused = False
        self.border_subtitle = ""
        self._show_buffer()

    def packet_at_cursor(self) -> PacketSeen | None:
        """The packet on the highlighted row."""
        return self._rows[self.cursor_row][1] if self._rows else None

    def shown_serials(self) -> list[int]:
        """The numbers of the rows on show, top to bottom."""
        return [serial for serial, _ in self._rows]

    def _show_buffer(self) -> None:
        self._rows = list(self._buffer)
        self.virtual_size = Size(self._width, len(self._rows) + 1)
        self.cursor_row = len(self._rows) - 1
        # The new virtual size counts once laid out: scroll to the newest row after that.
        self.call_after_refresh(self._follow)
        self.refresh()

    def _follow(self) -> None:
        if not self.paused:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def watch_cursor_row(self, row: int) -> None:
        self.refresh()

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self._rows) - 1))

    def _move(self, row: int) -> None:
        self.cursor_row = row
        height = self.scrollable_content_region.height - 1  # the header line stays put
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        """Move the highlight one row."""
        self._move(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        """Move the highlight a screenful."""
        self._move(self.cursor_row + direction * max(1, self.scrollable_content_region.height - 2))

    def action_edge(self, end: int) -> None:
        """Jump to the oldest or the newest row."""
        self._move(len(self._rows) - 1 if end else 0)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("packet-table--header")
            text = "".join(_cell(label, size) for label, size in _COLUMNS)
            return Strip([Segment(text, style)]).crop(scroll_x, scroll_x + width).extend_cell_length(width, style)
        index = scroll_y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        serial, packet = self._rows[index]
        base = self.rich_style
        if index == self.cursor_row:
            base = base + self.get_component_rich_style("packet-table--cursor")
        elif index % 2:
            base = base + self.get_component_rich_style("packet-table--even")
        relative = packet.time - (self.origin if self.origin is not None else packet.time)
        widths = [size for _, size in _COLUMNS]
        cells = (
            (str(serial), _PLAIN), (f"{relative:8.3f}", _PLAIN), ("->" if packet.direction == "out" else "<-", _PLAIN),
            (short_address(packet.source, self.network), _PLAIN),
            (short_address(packet.destination, self.network), _PLAIN),
            (packet.protocol, _PROTOCOL_STYLE.get(packet.protocol, _PLAIN)), (str(packet.length), _PLAIN),
            (packet.verdict, _VERDICT_STYLE.get(packet.verdict, _PLAIN)), (packet.reason, _PLAIN),
            (packet.summary, _PLAIN),
        )
        segments = [Segment(_cell(text, size), base + style) for (text, style), size in zip(cells, widths, strict=True)]
        return Strip(segments).crop(scroll_x, scroll_x + width).extend_cell_length(width, base)
