"""Sparklines that start at zero: no data is a flat dim baseline, and a quiet line stays low."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"
BASELINE = "▁"


def trend_text(values: Sequence[float], width: int, ceiling: float, bar: Style | str = "",
               baseline: Style | str = "dim") -> Text:
    """The last width values, newest on the right, as bars from zero up to the larger of ceiling and
    the largest value shown; zero, and room not yet filled, draw the baseline."""
    text = Text(no_wrap=True, overflow="crop")
    if width <= 0:
        return text
    shown = list(values)[-width:]
    text.append(BASELINE * (width - len(shown)), style=baseline)
    top = max([ceiling, *shown])
    for value in shown:
        if value <= 0 or top <= 0:
            text.append(BASELINE, style=baseline)
        else:
            # Any traffic at all shows: the smallest bar, in the bar colour, not the baseline's.
            text.append(BARS[min(len(BARS) - 1, max(0, math.ceil(value / top * len(BARS)) - 1))], style=bar)
    return text


class Trend(Widget):
    """One line of bars as wide as the widget; values are fractions of the ceiling unless they pass it."""

    COMPONENT_CLASSES = {"trend--bar", "trend--baseline"}
    DEFAULT_CSS = """
    Trend { height: 1; }
    Trend > .trend--bar { color: $accent; }
    Trend > .trend--baseline { color: $primary 40%; }
    """

    def __init__(self, ceiling: float = 1.0, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ceiling = ceiling
        self.values: tuple[float, ...] = ()

    def show(self, values: Sequence[float], ceiling: float | None = None) -> None:
        """Draw these values, oldest first."""
        self.values = tuple(values)
        if ceiling is not None:
            self.ceiling = ceiling
        self.refresh()

    def render(self) -> Text:
        return trend_text(self.values, self.content_region.width, self.ceiling,
                          self.get_component_rich_style("trend--bar"),
                          self.get_component_rich_style("trend--baseline"))
