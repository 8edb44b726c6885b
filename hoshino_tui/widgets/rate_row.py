"""One counter on one line: a label, a sparkline of its recent rate, and as many figures as fit."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from .trend import trend_text

MIN_TREND = 8
"""A sparkline narrower than this says little: drop figures first."""


class RateRow(Widget):
    """Label, sparkline and figures; the figures come as alternatives, longest first, and the row
    shows the longest that leaves the sparkline MIN_TREND cells, so nothing is cut mid-word."""

    COMPONENT_CLASSES = {"rate-row--label", "rate-row--bar", "rate-row--baseline"}
    DEFAULT_CSS = """
    RateRow { height: 1; }
    RateRow > .rate-row--label { color: $text-muted; }
    RateRow > .rate-row--bar { color: $accent; }
    RateRow > .rate-row--baseline { color: $primary 40%; }
    """

    def __init__(self, label: str, ceiling: float, *, label_width: int = 8, id: str | None = None) -> None:
        """ceiling: the rate that fills the sparkline while nothing is faster, so a quiet line looks quiet;
        label_width: the cells before the sparkline, the same for every row of a pane."""
        super().__init__(id=id)
        self.label = label
        self.label_width = max(label_width, len(label) + 1)
        self.ceiling = ceiling
        self.history: tuple[float, ...] = ()
        self.figures: tuple[str, ...] = ("-",)

    def show(self, history: Sequence[float], figures: Sequence[str]) -> None:
        """Draw the history (oldest first) and the figures, given longest first."""
        self.history = tuple(history)
        self.figures = tuple(figures) or ("-",)
        self.refresh()

    def shown_figures(self, width: int) -> str:
        """The figures that fit beside the label and a useful sparkline in width cells."""
        room = width - self.label_width - 1
        for figures in self.figures:
            if len(figures) + MIN_TREND <= room:
                return figures
        return self.figures[-1]

    def render(self) -> Text:
        width = self.content_region.width
        figures = self.shown_figures(width)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(self.label.ljust(self.label_width), style=self.get_component_rich_style("rate-row--label"))
        trend = width - self.label_width - 1 - len(figures)
        line.append_text(trend_text(self.history, trend, self.ceiling,
                                    self.get_component_rich_style("rate-row--bar"),
                                    self.get_component_rich_style("rate-row--baseline")))
        line.append(" " + figures)
        return line
