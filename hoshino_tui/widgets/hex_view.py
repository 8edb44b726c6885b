"""A hex dump of one packet that highlights the bytes of the selected field, as many bytes a line as fit."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

WIDTH = 16
"""Bytes per line when the width is not known yet."""
CHOICES = (32, 16, 8, 4)
HIGHLIGHT = "bold black on #f0c674"
GUTTER = 3
"""Cells around the dump: the border (two) and room for the scrollbar (one)."""


def line_width(per_line: int) -> int:
    """Cells one line of the dump takes: offset, hex bytes in groups of eight, and the ASCII column."""
    groups = max(0, per_line // 8 - 1)
    return 6 + 3 * per_line - 1 + groups + 2 + per_line


def bytes_per_line(width: int) -> int:
    """The most bytes a line (of the choices, all multiples of four) that fit in width cells."""
    return next((n for n in CHOICES if line_width(n) <= width), CHOICES[-1])


TREE_WANTS, TREE_NEEDS = 72, 30
"""Cells a decoded tree beside the dump wants before the dump goes to sixteen bytes a line, and needs
before it goes down to four."""


def width_beside_tree(total: int) -> int:
    """The width of a dump that shares total cells with a tree: exactly what its bytes per line take,
    sixteen when the tree keeps TREE_WANTS, else eight (four when even that leaves less than TREE_NEEDS)."""
    for per_line in (16, 8):
        width = line_width(per_line) + GUTTER
        if total - width >= (TREE_WANTS if per_line == 16 else TREE_NEEDS):
            return width
    return line_width(4) + GUTTER


def hex_dump(data: bytes, start: int = 0, length: int = 0, per_line: int = WIDTH) -> Text:
    """Offset, per_line bytes in groups of eight, and their ASCII; bytes start..start+length highlighted."""
    text = Text(no_wrap=True)
    end = start + length
    for line_start in range(0, len(data), per_line):
        chunk = data[line_start:line_start + per_line]
        text.append(f"{line_start:04x}  ", style="dim")
        for index in range(per_line):
            if index and index % 8 == 0:
                text.append(" ")
            last = index == per_line - 1
            if index >= len(chunk):
                text.append("  " if last else "   ")
                continue
            at = line_start + index
            lit = start <= at < end
            text.append(f"{chunk[index]:02x}", style=HIGHLIGHT if lit else "")
            if not last:
                # Keep the highlight unbroken between adjacent highlighted bytes of one group.
                joined = lit and start <= at + 1 < end and index % 8 != 7
                text.append(" ", style=HIGHLIGHT if joined else "")
        text.append("  ")
        for index, byte in enumerate(chunk):
            lit = start <= line_start + index < end
            char = chr(byte) if 0x20 <= byte < 0x7F else "."
            text.append(char, style=HIGHLIGHT if lit else "green")
        text.append("\n")
    text.rstrip()
    return text


class HexView(VerticalScroll):
    """Fits its bytes per line to its width and scrolls to keep the highlighted bytes in sight."""

    DEFAULT_CSS = """
    HexView { scrollbar-size-vertical: 1; }
    HexView > Static { width: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = b""
        self.span = (0, 0)
        self.per_line = WIDTH
        self.placeholder = "no bytes"

    @staticmethod
    def width_for(per_line: int) -> int:
        """The width a HexView needs to show per_line bytes a line."""
        return line_width(per_line) + GUTTER

    def compose(self) -> ComposeResult:
        yield Static("", id="hex-text")

    def on_resize(self, event: events.Resize) -> None:
        # size excludes the border; keep a cell for the scrollbar, so showing it changes nothing.
        per_line = bytes_per_line(self.size.width - 1)
        if per_line != self.per_line:
            self.per_line = per_line
            self.show(self.data, *self.span, placeholder=self.placeholder)

    def show(self, data: bytes, start: int = 0, length: int = 0, placeholder: str = "no bytes") -> None:
        """Dump data with start..start+length highlighted; placeholder says why there is nothing to dump."""
        self.data, self.span, self.placeholder = data, (start, length), placeholder
        self.query_one("#hex-text", Static).update(
            hex_dump(data, start, length, self.per_line) if data else placeholder)
        line = start // self.per_line
        if not self.scrollable_content_region.height or line < self.scroll_y or \
                line >= self.scroll_y + self.scrollable_content_region.height:
            self.scroll_to(y=max(0, line - 2), animate=False)
