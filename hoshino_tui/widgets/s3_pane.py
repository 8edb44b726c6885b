"""S3 requests: per-operation rate with history, totals, median latency; errors by kind in the border."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from .. import formatting
from ..sampler import S3_OPERATIONS, StatsView
from .rate_row import RateRow

CEILING = 10.0
"""Requests per second that fill a sparkline while none is busier: a poll or two a second stays low."""


def errors_text(errors: dict[str, int]) -> Text:
    """'no errors', or each failing kind and its count."""
    failing = {kind: n for kind, n in sorted(errors.items()) if n}
    if not failing:
        return Text("no errors", style="green")
    text = Text()
    for index, (kind, n) in enumerate(failing.items()):
        if index:
            text.append(" · ")
        text.append(f"{kind} {n}", style="bold yellow" if kind == "throttled" else "bold red")
    return text


class S3Pane(Vertical):
    """The S3 requests pane."""

    def compose(self) -> ComposeResult:
        for op in S3_OPERATIONS:
            yield RateRow(op.upper(), CEILING, label_width=7, id=f"s3-{op}")

    def on_mount(self) -> None:
        self.border_title = "S3 requests"
        self.border_subtitle = errors_text({})

    def show(self, view: StatsView) -> None:
        """Draw the latest rates."""
        for op in S3_OPERATIONS:
            series = view.s3[op]
            latency = view.s3_latency.get(op)
            rate = f"{formatting.rate(series.shown_rate()):>6}"
            total = f"total {formatting.count(series.total):>6}"
            median = f"p50 {formatting.seconds(latency) if latency else '-':>7}"
            self.query_one(f"#s3-{op}", RateRow).show(
                series.history, (f"{rate}  {total}  {median}", f"{rate}  {total}", rate))
        self.border_subtitle = errors_text(view.s3_errors)
