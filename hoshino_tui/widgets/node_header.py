"""The top bar: which node this is, where its packets go, how long it has run, and its state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.widgets import Static

from .. import formatting

_STATE_STYLE = {
    "starting": "bold yellow", "running": "bold green", "degraded": "bold #ff8700",
    "stopping": "bold yellow", "stopped": "bold bright_black", "failed": "bold red",
}


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the header says about the node; unknown parts are empty."""

    address: str = ""
    interface: str = ""
    netns: str | None = None
    bucket: str = ""
    endpoint: str = ""
    state: str = "starting"
    started: float | None = None
    stopped: float | None = None


class NodeHeader(Static):
    """Two lines of facts about the node; update() with new facts, tick() with the time."""

    def __init__(self, facts: NodeFacts, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.facts = facts
        self._now: float | None = None

    def on_mount(self) -> None:
        self._draw()

    def update_facts(self, **changes: object) -> None:
        """Change some facts and redraw."""
        facts = replace(self.facts, **changes)  # type: ignore[arg-type]
        if facts != self.facts:
            self.facts = facts
            self._draw()

    def tick(self, now: float) -> None:
        """Redraw the uptime for the time now."""
        self._now = now
        self._draw()

    def _draw(self) -> None:
        facts = self.facts
        style = _STATE_STYLE.get(facts.state, "")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" hoshino ", style="bold reverse")
        line.append("  ")
        line.append(facts.address or "address not known yet", style="bold" if facts.address else "dim")
        if facts.interface:
            line.append("  on ", style="dim")
            line.append(facts.interface)
            if facts.netns:
                line.append(f" in netns {facts.netns}", style="dim")
        line.append("\n")
        line.append(" ● ", style=style)
        line.append(f"{facts.state:<9}", style=style)
        if facts.started is not None and self._now is not None:
            end = facts.stopped if facts.stopped is not None else self._now
            line.append("  up ", style="dim")
            line.append(formatting.uptime(end - facts.started))
        line.append("  bucket ", style="dim")
        line.append(facts.bucket or "-")
        line.append("  endpoint ", style="dim")
        line.append(facts.endpoint or "AWS default")
        self.update(line)
