"""A node that plays a recording back as its event stream, at its own pace or faster: no root, no bucket."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from agent import wire
from agent.events import Event, EventQueue, NodeStarted, NodeStopped, Notice, PacketSeen, StatsSampled
from agent.heartbeat import HOLD_LIMIT
from agent.recent import CarriedObject, RecentObjects
from agent.recording import Playback

CARRIED = {"sent": "out", "delivered": "in"}
"""The verdicts of packets that crossed the bucket, and the direction of the object that carried them."""
ASSEMBLING = 8
"""Objects whose packets may still be coming: a bundle's packets are published one after another."""


class RecordingNode:
    """Publishes a recorded run as a node would, and stands in for agent.node.Node's controls.

    speed 1 plays at the pace it was recorded, 10 ten times faster, 0 as fast as the queue takes it.
    The heartbeat keys hold the interval the replayed snapshots report; clock() tells the
    recording's time at the point reached, so a front end's ages and uptimes fit the recording."""

    def __init__(self, path: Path, events: EventQueue, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or above")
        self.playback = Playback(path)
        self.events = events
        self.speed = speed
        self.recent = RecentObjects()
        self.published = 0
        head = list(itertools.islice(self.playback, 100))
        self.started = next((event for event in head if isinstance(event, NodeStarted)), None)
        self.fastest = self.started.fastest if self.started else 0.001
        self.slowest = self.started.slowest if self.started else 0.5
        self._recorded_interval = self.slowest
        self._held: float | None = None
        self._now = head[0].time if head else time.time()
        self._now_at = time.monotonic()
        self._ended = False
        self._assembling: dict[str, tuple[float, str, list[bytes]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._play, name="hoshino-replay", daemon=True)

    @property
    def address(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(self.started.address if self.started else "::")

    @property
    def interval(self) -> float:
        held = self._held
        return self._recorded_interval if held is None else held

    @property
    def manual(self) -> bool:
        return self._held is not None

    @property
    def ended(self) -> bool:
        """Every recorded event has been published."""
        with self._lock:
            return self._ended

    def clock(self) -> float:
        """The recording's time at the point played, running on at the playback's speed between events."""
        with self._lock:
            if self.speed == 0 or self._ended:
                return self._now
            return self._now + (time.monotonic() - self._now_at) * self.speed

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        """Stop playing; the stream ends with NodeStopped (the recording's own, if it got that far)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        self.events.publish(NodeStopped(self.clock()))

    def faster(self) -> None:
        self._held = max(self.fastest, self.interval / 2)

    def slower(self) -> None:
        self._held = min(max(self.slowest, HOLD_LIMIT), self.interval * 2)

    def automatic(self) -> None:
        self._held = None

    def hold(self, interval: float) -> None:
        self._held = min(max(self.slowest, HOLD_LIMIT), max(self.fastest, interval))

    def recent_objects(self) -> list[CarriedObject]:
        """The objects the recorded node carried up to the point played, rebuilt from its packets."""
        with self._lock:
            assembling = [CarriedObject(at, direction, key, wire.encode(packets))  # type: ignore[arg-type]
                          for key, (at, direction, packets) in self._assembling.items()]
        return self.recent.snapshot() + assembling

    def _paced(self) -> Iterator[Event]:
        """The recorded events, each once its time has come."""
        began, origin = time.monotonic(), None
        for event in self.playback:
            origin = event.time if origin is None else origin
            if self.speed > 0:
                delay = (event.time - origin) / self.speed - (time.monotonic() - began)
                if delay > 0 and self._stop.wait(delay):
                    return
            if self._stop.is_set():
                return
            yield event

    def _play(self) -> None:
        for event in self._paced():
            with self._lock:
                self._now, self._now_at = event.time, time.monotonic()
            if isinstance(event, NodeStopped):
                self._stopped.set()
            elif isinstance(event, StatsSampled):
                self._recorded_interval = event.interval
                held = self._held
                if held is not None:
                    event = dataclasses.replace(event, interval=held, manual=True)
            elif isinstance(event, PacketSeen):
                self._carry(event)
            self.events.publish(event)
            self.published += 1
        with self._lock:
            self._ended = True
        if not (self._stop.is_set() or self._stopped.is_set()):
            lines = self.playback.skipped
            skipped = f" ({lines} line{'' if lines == 1 else 's'} skipped)" if self.playback.skipped else ""
            self.events.publish(Notice(self.clock(), "info", f"end of the recording{skipped}"))

    def _carry(self, event: PacketSeen) -> None:
        """Collect the packets of each object; an object is done once newer ones have pushed it out."""
        direction = CARRIED.get(event.verdict)
        if direction is None or not event.key or not event.packet:
            return
        with self._lock:
            at, _, packets = self._assembling.pop(event.key, (event.time, direction, []))
            self._assembling[event.key] = (at, direction, [*packets, event.packet])
            done = []
            while len(self._assembling) > ASSEMBLING:
                key = next(iter(self._assembling))
                done.append((key, *self._assembling.pop(key)))
        for key, at, direction, packets in done:
            self.recent.add(CarriedObject(at, direction, key, wire.encode(packets)))  # type: ignore[arg-type]


def waiting_objects(path: Path, count: int = 4) -> dict[str, tuple[bytes, datetime]]:
    """The last count objects the recorded node sent, as the bucket held them before the peer took them:
    key -> (body, time written), for an inspector shown beside a replay."""
    sent: dict[str, tuple[float, list[bytes]]] = {}
    for event in Playback(path):
        if isinstance(event, PacketSeen) and event.verdict == "sent" and event.key and event.packet:
            at, packets = sent.get(event.key, (event.time, []))
            sent[event.key] = (at, [*packets, event.packet])
    last = list(sent.items())[-count:]
    return {key: (wire.encode(packets), datetime.fromtimestamp(at, UTC)) for key, (at, packets) in last}
