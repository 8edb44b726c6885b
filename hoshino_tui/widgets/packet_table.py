"""Recent packets, newest at the bottom: bounded, filterable, following the newest row unless paused,
with columns sized to their content and to the width."""

from __future__ import annotations

import ipaddress
from collections import deque

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from agent.events import PacketSeen

from .. import formatting
from ..filtering import EVERYTHING, PacketFilter
from ..retransmissions import MARK
from .packet_columns import Layout, cached_short_address, fit, info_text, layout_columns

MAX_ROWS = 500
HISTORY = 2000
"""Packets kept for a new filter to search; the table shows at most MAX_ROWS of them."""

# Wireshark's colouring rules, as foreground colours that read on a dark terminal.
_PROTOCOL_STYLE = {"ICMPv6": Style(color="#f0a0ff"), "ICMP": Style(color="#f0a0ff"), "TCP": Style(color="#b0a8ff"),
                   "UDP": Style(color="#80c8ff")}
_VERDICT_STYLE = {"sent": Style(color="green"), "delivered": Style(color="green"), "ignored": Style(dim=True),
                  "dropped": Style(color="red", bold=True)}
_PLAIN = Style()
_RETRANSMISSION = Style(color="#ff5f5f")
"""Wireshark's 'Bad TCP' rule, red, for a segment sent again."""


class PacketTable(ScrollView, can_focus=True):
    """Draws only the rows in view (the Line API), so a flood of packets costs one screenful.

    Keeps the last HISTORY packets and shows the last max_rows that match the filter; paused, it
    keeps collecting but stops moving.
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
    PacketTable { overflow-x: hidden; scrollbar-size-vertical: 1; }
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
        self._network: ipaddress.IPv6Network | None = None
        self.filter: PacketFilter = EVERYTHING
        self._buffer: deque[tuple[int, PacketSeen]] = deque(maxlen=max(HISTORY, max_rows))
        self._matching: deque[tuple[int, PacketSeen]] = deque(maxlen=max_rows)
        self._rows: list[tuple[int, PacketSeen]] = []
        self._serial = 0
        self._widest: dict[str, int] = {}
        self._layout: tuple[int, Layout] | None = None

    def on_mount(self) -> None:
        self.border_title = "Recent packets"

    @property
    def network(self) -> ipaddress.IPv6Network | None:
        """The node's network: addresses inside it are shown by their interface identifier."""
        return self._network

    @network.setter
    def network(self, network: ipaddress.IPv6Network | None) -> None:
        if network != self._network:
            self._network = network
            self._measure(self._matching, reset=True)
            self.refresh()

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
        matched: list[tuple[int, PacketSeen]] = []
        active = self.filter.active
        for packet in packets:
            self._serial += 1
            row = (self._serial, packet)
            self._buffer.append(row)
            if not active or self.filter.matches(packet):
                matched.append(row)
        self._matching.extend(matched)
        if matched:
            self._measure(matched)
        if not self.paused and packets:
            self._show_rows()

    def set_filter(self, packet_filter: PacketFilter) -> None:
        """Show only the recent packets that match; EVERYTHING shows them all again."""
        self.filter = packet_filter
        self._matching.clear()
        self._matching.extend(row for row in self._buffer if not packet_filter.active or packet_filter.matches(row[1]))
        self._measure(self._matching, reset=True)
        self._show_rows()

    def pause(self) -> None:
        """Freeze the view; packets keep being collected."""
        self.paused = True
        self._describe()

    def resume(self) -> None:
        """Show what arrived meanwhile and follow the newest again."""
        self.paused = False
        self._show_rows()

    def packet_at_cursor(self) -> PacketSeen | None:
        """The packet on the highlighted row."""
        return self._rows[self.cursor_row][1] if self._rows else None

    def shown_serials(self) -> list[int]:
        """The numbers of the rows on show, top to bottom."""
        return [serial for serial, _ in self._rows]

    def shown_packets(self) -> list[PacketSeen]:
        """The packets on show, top to bottom."""
        return [packet for _, packet in self._rows]

    def current_layout(self) -> Layout:
        """The columns as they are drawn at the present width."""
        width = self.scrollable_content_region.width
        if self._layout is None or self._layout[0] != width:
            self._layout = (width, layout_columns(self._widest, width))
        return self._layout[1]

    def _measure(self, rows: deque[tuple[int, PacketSeen]] | list[tuple[int, PacketSeen]],
                 reset: bool = False) -> None:
        """Widen the columns to fit these rows; reset measures them afresh (a new filter or network)."""
        widest = {} if reset else dict(self._widest)
        if rows:
            widest["no"] = max(widest.get("no", 0), len(str(rows[-1][0])))
        for _, packet in rows:
            info = info_text(packet.summary, packet.protocol)
            for key, text in (("time", self._time(packet)), ("dir", "->"), ("proto", packet.protocol),
                              ("len", str(packet.length)), ("verdict", packet.verdict),
                              ("reason", packet.reason), ("info", info)):
                if len(text) > widest.get(key, 0):
                    widest[key] = len(text)
            info_reason = len(info) + (len(packet.reason) + 2 if packet.reason else 0)
            if info_reason > widest.get("info_reason", 0):
                widest["info_reason"] = info_reason
            for key, address in (("source", packet.source), ("destination", packet.destination)):
                short = len(cached_short_address(address, self._network))
                if short > widest.get(f"{key}_short", 0):
                    widest[f"{key}_short"] = short
                if len(address) > widest.get(f"{key}_full", 0):
                    widest[f"{key}_full"] = len(address)
        if widest != self._widest:
            self._widest = widest
            self._layout = None

    def _time(self, packet: PacketSeen) -> str:
        return f"{packet.time - (self.origin if self.origin is not None else packet.time):.3f}"

    def _describe(self) -> None:
        """Say in the bottom border whether the view is paused or filtered."""
        text = Text()
        if self.filter.active:
            text.append("filter ", style="dim")
            text.append(self.filter.text, style="bold")
            shown = len(self._rows) if self.paused else len(self._matching)
            text.append(f" · {shown} of the last {formatting.plural(len(self._buffer), 'packet')} · Esc clears",
                        style="dim")
        if self.paused:
            text.append("  " if text else "")
            text.append("paused", style="bold yellow")
            text.append(" · p resumes", style="dim")
        self.border_subtitle = text if text else None

    def _show_rows(self) -> None:
        self._rows = list(self._matching)
        self.virtual_size = Size(0, len(self._rows) + 1)
        self.cursor_row = len(self._rows) - 1
        self._describe()
        self._follow()
        self.refresh()

    def _follow(self) -> None:
        """Scroll to the newest row. Forced, so it holds before the first layout too: the scroll
        position is clamped to the new size once the size is known."""
        if not self.paused:
            self.scroll_to(y=len(self._rows) + 1, animate=False, force=True, immediate=True)
            self.call_after_refresh(self._show_scroll_position)

    def _show_scroll_position(self) -> None:
        """A scrollbar that appears only after the scroll was made (rows that came before the
        layout) starts at the top: tell it where the view is."""
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.position = self.scroll_y

    def on_resize(self, event: events.Resize) -> None:
        self._layout = None
        self._follow()

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

    def cells(self, serial: int, packet: PacketSeen, layout: Layout) -> list[tuple[str, Style]]:
        """The row for one packet as (text, style) cells, fitted to the layout."""
        network = None if layout.full_addresses else self._network
        info = info_text(packet.summary, packet.protocol)
        if layout.reason_in_info and packet.reason:
            info = f"{packet.reason}: {info}"
        values = {
            "no": (str(serial), _PLAIN), "time": (self._time(packet), _PLAIN),
            "dir": ("->" if packet.direction == "out" else "<-", _PLAIN),
            "source": (cached_short_address(packet.source, network), _PLAIN),
            "destination": (cached_short_address(packet.destination, network), _PLAIN),
            "proto": (packet.protocol, _PROTOCOL_STYLE.get(packet.protocol, _PLAIN)),
            "len": (str(packet.length), _PLAIN),
            "verdict": (packet.verdict, _VERDICT_STYLE.get(packet.verdict, _PLAIN)),
            "reason": (packet.reason, _PLAIN),
        }
        row = []
        for column, width in layout.columns:
            text, style = values[column.key]
            middle = column.key in ("source", "destination")
            row.append((fit(text, width, middle=middle, right=column.right) + " ", style))
        row.append((fit(info, layout.info), _RETRANSMISSION if packet.summary.startswith(MARK) else _PLAIN))
        return row

    def header(self, layout: Layout) -> str:
        """The header line: for each column the longest label that fits it."""
        labels = []
        for column, width in layout.columns:
            label = next((label for label in column.labels if len(label) <= width), column.labels[-1])
            labels.append(fit(label, width, right=column.right) + " ")
        labels.append(fit("Info", layout.info))
        return "".join(labels)

    def render_line(self, y: int) -> Strip:
        scroll_y = int(self.scroll_offset.y)
        width = self.scrollable_content_region.width
        layout = self.current_layout()
        if y == 0:
            style = self.get_component_rich_style("packet-table--header")
            return Strip([Segment(self.header(layout), style)]).crop(0, width).extend_cell_length(width, style)
        index = scroll_y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        serial, packet = self._rows[index]
        base = self.rich_style
        if index == self.cursor_row:
            base = base + self.get_component_rich_style("packet-table--cursor")
        elif index % 2:
            base = base + self.get_component_rich_style("packet-table--even")
        segments = [Segment(text, base + style) for text, style in self.cells(serial, packet, layout)]
        return Strip(segments).crop(0, width).extend_cell_length(width, base)
