"""A hex dump of one packet that highlights the bytes of the selected field."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

WIDTH = 16
HIGHLIGHT = "bold black on #f0c674"


def line_length(width: int) -> int:
    """Characters in one line of a dump of width bytes: offset, hex (a gap halfway above 8), ASCII."""
    return 6 + 3 * width + (1 if width > 8 else 0) + 1 + width


def fitting_width(columns: int) -> int:
    """The most bytes per line (16, 8 or 4) whose lines fit in columns."""
    return next((width for width in (16, 8) if line_length(width) <= columns), 4)


def hex_dump(data: bytes, start: int = 0, length: int = 0, width: int = WIDTH) -> Text:
    """Offset, width bytes (two groups when above 8), and their ASCII; bytes start..start+length highlighted."""
    text = Text(no_wrap=True)
    end = start + length
    half = width // 2 if width > 8 else -1
    for line_start in range(0, len(data), width):
        chunk = data[line_start:line_start + width]
        text.append(f"{line_start:04x}  ", style="dim")
        for index in range(width):
            if index == half:
                text.append(" ")
            if index >= len(chunk):
                text.append("   ")
                continue
            at = line_start + index
            lit = start <= at < end
            text.append(f"{chunk[index]:02x}", style=HIGHLIGHT if lit else "")
            # Keep the highlight unbroken between adjacent highlighted bytes.
            joined = lit and start <= at + 1 < end and index not in (half - 1, width - 1)
            text.append(" ", style=HIGHLIGHT if joined else "")
        text.append(" ")
        for index, byte in enumerate(chunk):
            lit = start <= line_start + index < end
            char = chr(byte) if 0x20 <= byte < 0x7F else "."
            text.append(char, style=HIGHLIGHT if lit else "green")
        text.append("\n")
    return text


class HexView(VerticalScroll):
    """Scrolls to keep the highlighted bytes in sight."""

    DEFAULT_CSS = """
    HexView > Static { width: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = b""
        self.span = (0, 0)
        self.bytes_per_line = WIDTH
        """Bytes per line: as many as fit the view (16, 8 or 4)."""
        self.placeholder = "no bytes"

    def compose(self) -> ComposeResult:
        yield Static("", id="hex-text")

    def on_resize(self) -> None:
        # Leave room for the scrollbar, which comes and goes with the packet's length.
        width = fitting_width(self.content_region.width - self.styles.scrollbar_size_vertical)
        if width != self.bytes_per_line:
            self.bytes_per_line = width
            self.show(self.data, *self.span, placeholder=self.placeholder)

    def show(self, data: bytes, start: int = 0, length: int = 0, placeholder: str = "no bytes") -> None:
        """Dump data with start..start+length highlighted; placeholder says why there is nothing to dump."""
        self.data, self.span, self.placeholder = data, (start, length), placeholder
        dump = hex_dump(data, start, length, self.bytes_per_line) if data else placeholder
        self.query_one("#hex-text", Static).update(dump)
        line = start // self.bytes_per_line
        if not self.scrollable_content_region.height or line < self.scroll_y or \
                line >= self.scroll_y + self.scrollable_content_region.height:
            self.scroll_to(y=max(0, line - 2), animate=False)
