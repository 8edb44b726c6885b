"""S3 operations: per-operation rate with history, totals, median latency, and errors by kind."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .. import formatting
from ..sampler import S3_OPERATIONS, StatsView
from .rate_row import RateRow


class S3Pane(Vertical):
    """The S3 operations pane."""

    def compose(self) -> ComposeResult:
        for op in S3_OPERATIONS:
            yield RateRow(op.upper(), id=f"s3-{op}")
        yield Static("errors: none", id="s3-errors")

    def on_mount(self) -> None:
        self.border_title = "S3 operations"

    def show(self, view: StatsView) -> None:
        """Draw the latest rates."""
        for op in S3_OPERATIONS:
            series = view.s3[op]
            latency = view.s3_latency.get(op)
            median = formatting.seconds(latency) if latency else "-"
            figures = f"{series.rate:6.1f}/s  total {formatting.count(series.total):>6}  p50 {median:>7}"
            self.query_one(f"#s3-{op}", RateRow).show(series.history, figures)
        errors = Text("errors: ")
        failing = {kind: n for kind, n in sorted(view.s3_errors.items()) if n}
        if not failing:
            errors.append("none", style="green")
        for index, (kind, n) in enumerate(failing.items()):
            if index:
                errors.append(" · ")
            errors.append(f"{kind} {n}", style="bold yellow" if kind == "throttled" else "bold red")
        self.query_one("#s3-errors", Static).update(errors)
