"""A banner that says what stopped the node and how to fix it; hidden while all is well."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ProblemBanner(Static):
    """Shows one problem; the app stays usable underneath it."""

    DEFAULT_CSS = """
    ProblemBanner { display: none; }
    ProblemBanner.-shown { display: block; }
    """

    def show_problem(self, title: str, message: str) -> None:
        """Show title in bold, then the message, which names the fix."""
        text = Text()
        text.append(f"{title}\n", style="bold")
        text.append(message)
        self.update(text)
        self.add_class("-shown")

    def clear_problem(self) -> None:
        """Hide the banner."""
        self.remove_class("-shown")
