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
PAUSE_CHECK = 0.1
"""Seconds between looks at a pause or a stop while the playback waits."""
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
        self._began = self._now_at
        self._paused_at: float | None = None
        self._playing = threading.Event()
        self._playing.set()
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
        """The recording's time at the point played, running on at the playback's speed between events
        (and standing still while paused)."""
        with self._lock:
            if self.speed == 0 or self._ended:
                return self._now
            at = self._paused_at if self._paused_at is not None else time.monotonic()
            return self._now + (at - self._now_at) * self.speed

    @property
    def paused(self) -> bool:
        """The playback is held where it is."""
        return self._paused_at is not None

    def pause(self) -> None:
        """Hold the playback, and its clock, where they are (not once it has ended)."""
        with self._lock:
            if self._paused_at is None and not self._ended:
                self._paused_at = time.monotonic()
                self._playing.clear()

    def resume(self) -> None:
        """Play on from where the playback was held, at its pace."""
        with self._lock:
            if self._paused_at is None:
                return
            held, self._paused_at = time.monotonic() - self._paused_at, None
            self._began += held
            self._now_at += held
            self._playing.set()

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
        """The recorded events, each once its time has come (time paused not counted)."""
        origin = None
        with self._lock:
            self._began = time.monotonic()
        for event in self.playback:
            origin = event.time if origin is None else origin
            if not self._until_due((event.time - origin) / self.speed if self.speed > 0 else 0.0):
                return
            yield event

    def _until_due(self, due: float) -> bool:
        """Wait while paused and until due seconds of playing have passed; False once stopped."""
        while not self._stop.is_set():
            if not self._playing.is_set():
                self._playing.wait(PAUSE_CHECK)
                continue
            remaining = due - (time.monotonic() - self._began)
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, PAUSE_CHECK))
        return False

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
