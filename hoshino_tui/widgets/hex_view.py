"""A hex dump of one packet that highlights the bytes of the selected field."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

WIDTH = 16
HIGHLIGHT = "bold black on #f0c674"


def hex_dump(data: bytes, start: int = 0, length: int = 0) -> Text:
    """Offset, sixteen bytes in two groups, and their ASCII; bytes start..start+length highlighted."""
    text = Text(no_wrap=True)
    end = start + length
    for line_start in range(0, len(data), WIDTH):
        chunk = data[line_start:line_start + WIDTH]
        text.append(f"{line_start:04x}  ", style="dim")
        for index in range(WIDTH):
            if index == 8:
                text.append(" ")
            if index >= len(chunk):
                text.append("   ")
                continue
            at = line_start + index
            lit = start <= at < end
            text.append(f"{chunk[index]:02x}", style=HIGHLIGHT if lit else "")
            # Keep the highlight unbroken between adjacent highlighted bytes.
            text.append(" ", style=HIGHLIGHT if lit and start <= at + 1 < end and index not in (7, 15) else "")
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

    def compose(self) -> ComposeResult:
        yield Static("", id="hex-text")

    def show(self, data: bytes, start: int = 0, length: int = 0) -> None:
        """Dump data with start..start+length highlighted."""
        self.data, self.span = data, (start, length)
        self.query_one("#hex-text", Static).update(hex_dump(data, start, length) if data else "no bytes")
        line = start // WIDTH
        if not self.scrollable_content_region.height or line < self.scroll_y or \
                line >= self.scroll_y + self.scrollable_content_region.height:
            self.scroll_to(y=max(0, line - 2), animate=False)
