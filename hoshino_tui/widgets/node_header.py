"""The top bar: which node this is, where its packets go, how long it has run, and its state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.widget import Widget

from agent.clock import BOUND, WARN_ABOVE

from .. import formatting

_STATE_STYLE = {
    "starting": "bold yellow", "running": "bold green", "degraded": "bold #ff8700",
    "stopping": "bold yellow", "stopped": "bold bright_black", "failed": "bold red",
    "replaying": "bold magenta", "paused": "bold yellow", "ended": "bold bright_black",
}
_STATE_MARK = {"replaying": "▶", "paused": "‖", "ended": "■"}
"""A replay's states are marked as a player's; a live node's with a dot."""
REPLAY_BADGE = " REPLAY "


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
    clock_offset: float | None = None
    """How far the node's clock is ahead of the bucket's, in seconds."""
    replay: str = ""
    """The recording played back, and how fast; empty for a live node."""


def fit(parts: list[tuple[int, Text]], width: int) -> Text:
    """Join the parts, in order, leaving out whole parts (highest rank first) until the line fits."""
    kept = list(parts)
    while sum(part.cell_len for _, part in kept) > width and any(rank for rank, _ in kept):
        worst = max(rank for rank, _ in kept)
        drop = max(index for index, (rank, _) in enumerate(kept) if rank == worst)
        del kept[drop]
    line = Text(no_wrap=True, overflow="ellipsis")
    for _, part in kept:
        line.append_text(part)
    return line


def clock_part(offset: float) -> Text:
    """The node's clock against the bucket's: quiet within a second, orange beyond, red past what is corrected."""
    style = "" if abs(offset) <= WARN_ABOVE else "bold #ff8700" if abs(offset) <= BOUND else "bold red"
    return Text.assemble(("  clock ", "dim"), (f"{offset:+.1f} s", style), (" from the bucket's", "dim"))


class NodeHeader(Widget):
    """Two lines of facts about the node; parts that do not fit the width are left out whole."""

    DEFAULT_CSS = "NodeHeader { height: 2; }"

    def __init__(self, facts: NodeFacts, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.facts = facts
        self._now: float | None = None

    def update_facts(self, **changes: object) -> None:
        """Change some facts and redraw."""
        facts = replace(self.facts, **changes)  # type: ignore[arg-type]
        if facts != self.facts:
            self.facts = facts
            self.refresh()

    def tick(self, now: float) -> None:
        """Redraw the uptime for the time now."""
        self._now = now
        self.refresh()

    def lines(self, width: int) -> tuple[Text, Text]:
        """The two lines as they fit in width cells."""
        facts = self.facts
        style = _STATE_STYLE.get(facts.state, "")
        replay = bool(facts.replay)
        first: list[tuple[int, Text]] = [(0, Text(" hoshino ", style="bold reverse"))]
        if replay:
            first.append((0, Text.assemble(" ", (REPLAY_BADGE, "bold reverse magenta"))))
        first.append((0, Text("  " + (facts.address or "address not known yet"),
                              style="bold" if facts.address else "dim")))
        if facts.interface:
            first.append((1, Text.assemble(("  on ", "dim"), facts.interface)))
            if facts.netns and not replay:  # a recorded namespace is long gone: the node is not here
                first.append((2, Text(f" in netns {facts.netns}", style="dim")))
        mark = _STATE_MARK.get(facts.state, "●")
        second: list[tuple[int, Text]] = [(0, Text.assemble((f" {mark} ", style), (f"{facts.state:<9}", style)))]
        if facts.started is not None and self._now is not None:
            end = facts.stopped if facts.stopped is not None else self._now
            # A replay's time is the recording's: how far into it the playback is, not an uptime.
            label = "  at " if replay else "  up "
            second.append((0, Text.assemble((label, "dim"), formatting.uptime(end - facts.started))))
        if facts.clock_offset is not None:
            second.append((1, clock_part(facts.clock_offset)))
        second.append((1, Text.assemble(("  bucket ", "dim"), facts.bucket or "-")))
        if replay:
            second.append((2, Text.assemble(("  from ", "dim"), facts.replay)))
        else:
            second.append((2, Text.assemble(("  endpoint ", "dim"), facts.endpoint or "AWS default")))
        return fit(first, width), fit(second, width)

    def render(self) -> Text:
        first, second = self.lines(self.content_region.width)
        return Text("\n", no_wrap=True).join([first, second])
