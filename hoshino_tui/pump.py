"""Moves agent events to the UI in paced batches, folding counter snapshots into rates on the way."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence

from textual.message import Message

from agent.events import Event, EventQueue, NodeStarted, NodeStopped, Notice, PacketSeen, StatsSampled

from .messages import AgentStarted, AgentStopped, NoticePosted, PacketsSeen, StatsUpdated
from .retransmissions import Retransmissions
from .sampler import StatsModel

BATCH_LIMIT = 5_000
PERIOD = 0.05
"""At most this often the UI hears about new events: a flood becomes twenty batches a second."""


class EventPump:
    """Reads the agent's queue; never blocks the agent, which publishes without waiting."""

    def __init__(self, events: EventQueue, post: Callable[[Message], object], period: float = PERIOD) -> None:
        self.events = events
        self.post = post
        self.period = period
        self.model = StatsModel()
        self.retransmissions = Retransmissions()
        self.count = 0

    def run(self, cancelled: Callable[[], bool]) -> None:
        """Forward batches until cancelled() is true."""
        while not cancelled():
            began = time.monotonic()
            if self.pump_once(timeout=0.1):
                # Let the next batch gather so a burst costs the UI one redraw, not thousands.
                time.sleep(max(0.0, self.period - (time.monotonic() - began)))

    def pump_once(self, timeout: float = 0.0) -> int:
        """Forward whatever is waiting (waiting up to timeout for the first event); return how many."""
        try:
            first = self.events.get(timeout=timeout) if timeout > 0 else self.events.drain(1)[0]
        except (queue.Empty, IndexError):
            return 0
        batch = [first, *self.events.drain(BATCH_LIMIT)]
        self.forward(batch)
        return len(batch)

    def forward(self, batch: Sequence[Event]) -> None:
        """Post one message per kind of event in the batch, in the order a reader expects."""
        started: list[NodeStarted] = []
        packets: list[PacketSeen] = []
        notices: list[Notice] = []
        stopped: list[NodeStopped] = []
        oldest_stats: float | None = None
        for event in batch:
            if isinstance(event, StatsSampled):
                self.model.add(event)
                oldest_stats = event.time if oldest_stats is None else oldest_stats
            elif isinstance(event, PacketSeen):
                packets.append(self.retransmissions.mark(event))
            elif isinstance(event, Notice):
                notices.append(event)
            elif isinstance(event, NodeStarted):
                started.append(event)
            elif isinstance(event, NodeStopped):
                stopped.append(event)
        for event in started:
            self.post(AgentStarted(event))
        view = self.model.view()
        if oldest_stats is not None and view is not None:
            self.post(StatsUpdated(view, oldest_stats))
        if packets:
            self.post(PacketsSeen(tuple(packets)))
        for notice in notices:
            self.post(NoticePosted(notice))
        for event in stopped:
            self.post(AgentStopped(event))
        self.count += len(batch)
