"""One counter on one line: a label, a sparkline of its recent rate, and the current figures."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline, Static


class RateRow(Horizontal):
    """Label, sparkline and a figures column; the figures text is the caller's."""

    DEFAULT_CSS = """
    RateRow { height: 1; }
    RateRow > .rate-label { width: 8; color: $text-muted; }
    RateRow > Sparkline { width: 1fr; min-width: 8; margin-right: 1; }
    RateRow > .rate-figures { width: auto; min-width: 30; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._label = label

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="rate-label")
        yield Sparkline([0.0])
        yield Static("-", classes="rate-figures")

    def show(self, history: Sequence[float], figures: str) -> None:
        """Draw the history (oldest first) and the figures text."""
        self.query_one(Sparkline).data = list(history) or [0.0]
        self.query_one(".rate-figures", Static).update(figures)
