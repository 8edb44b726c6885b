"""A footer that keeps every key on one line at 80 columns: less padding there, Ctrl+P left to help."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

NARROW = 100
"""Below this many columns the footer goes compact and drops the command palette's key."""


class FittedFooter(Footer):
    """Textual's footer, compact when the screen is narrow."""

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW  # the footer spans the screen
        self.compact = narrow
        self.show_command_palette = not narrow
