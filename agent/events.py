"""Events the agent publishes for any front end, on a bounded queue it never blocks on."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["out", "in"]
Verdict = Literal["sent", "delivered", "ignored", "dropped"]
Level = Literal["info", "warning", "error"]
State = Literal["starting", "running", "degraded", "stopped", "failed"]


@dataclass(frozen=True, slots=True)
class NodeStarted:
    """The node is up: its device is configured and both loops run."""

    time: float
    address: str
    network: str
    interface: str
    netns: str | None
    bucket: str
    endpoint: str
    mtu: int
    fastest: float
    slowest: float


@dataclass(frozen=True, slots=True)
class StatsSampled:
    """A snapshot of every counter, taken several times a second."""

    time: float
    state: State
    interval: float
    manual: bool
    packets_out: int
    bytes_out: int
    packets_in: int
    bytes_in: int
    s3_ops: dict[str, int]
    """Requests sent, by operation: put, get, list, delete, head."""
    s3_errors: dict[str, int]
    """Failed requests, by kind: throttled, timeout, unreachable, denied, error."""
    s3_latency: dict[str, float]
    """Recent median latency in seconds, by operation."""
    dropped: dict[str, int]
    ignored: dict[str, int]
    missed_beats: int
    events_dropped: int
    waiting_egress: int
    requests: dict[str, int] = field(default_factory=dict)
    """Billable requests by "service.operation" (s3.put, s3.list, sqs.receive, ...)."""
    dollars: dict[str, float] = field(default_factory=dict)
    """Estimated cost so far, in dollars, by "service.operation", at the node's price table."""
    nat_dollars: float = 0.0
    """What a NAT gateway would have charged for the same traffic over the same time."""
    wakeup: str = "poll"
    """How the node learns of new objects: "poll" (LIST on a heartbeat) or "sqs" (a doorbell)."""
    pace_rate: float = 0.0
    """The pace, in packets per second, the latest paced object was delivered at (0: none yet)."""
    delivery_backlog: int = 0
    """Objects fetched and waiting for their turn to be delivered."""
    routes: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """By route (a prefix of the routing table): its next hop, bytes sent and bytes delivered."""
    exit_nat_dollars: float = 0.0
    """What a NAT gateway would have charged per GB for the bytes that went through an exit node."""
    clock_offset: float | None = None
    """How far the node's clock is ahead of the bucket's (negative: behind), in seconds; None until known."""


@dataclass(frozen=True, slots=True)
class PacketSeen:
    """One packet crossed the node, or was ignored or dropped on the way."""

    time: float
    direction: Direction
    source: str
    destination: str
    protocol: str
    summary: str
    length: int
    key: str
    verdict: Verdict
    reason: str = ""
    packet: bytes = b""
    """The packet's first SNAPLEN bytes, as a capture would keep them: enough to decode its headers."""


SNAPLEN = 4096


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person should read: S3 trouble, recovery, a stop."""

    time: float
    level: Level
    message: str


@dataclass(frozen=True, slots=True)
class NodeStopped:
    """The node has stopped and removed what it added; error is set when it failed."""

    time: float
    error: str = ""


Event = NodeStarted | StatsSampled | PacketSeen | Notice | NodeStopped


@dataclass
class EventQueue:
    """A bounded queue of events; publishing never blocks, overflow is dropped and counted."""

    maxsize: int = 8192
    queue: queue.Queue[Event] = field(init=False)
    dropped: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.queue = queue.Queue(maxsize=self.maxsize)

    def publish(self, event: Event) -> None:
        """Put an event on the queue, or count it as dropped when the queue is full."""
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def get(self, timeout: float | None = None) -> Event:
        """Wait for the next event; raise queue.Empty after timeout."""
        return self.queue.get(timeout=timeout)

    def drain(self, limit: int = 10_000) -> list[Event]:
        """Take up to limit events that are waiting now, without blocking."""
        events: list[Event] = []
        while len(events) < limit:
            try:
                events.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return events
