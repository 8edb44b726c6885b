"""The objects a node recently carried, sent and received, kept in a bounded ring for an inspector."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from agent.events import Direction

MAX_OBJECTS = 256
MAX_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class CarriedObject:
    """One object as the node PUT or delivered it; body is the plain (unsealed) body."""

    time: float
    direction: Direction
    key: str
    body: bytes
    sealed: bool = False

    @property
    def size(self) -> int:
        return len(self.body)


class RecentObjects:
    """A ring of the newest carried objects, bounded in count and in bytes; safe between threads."""

    def __init__(self, max_objects: int = MAX_OBJECTS, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._objects: deque[CarriedObject] = deque(maxlen=max_objects)
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, carried: CarriedObject) -> None:
        """Keep an object, forgetting the oldest ones beyond the bounds (an object over the byte bound is skipped)."""
        if carried.size > self.max_bytes:
            return
        with self._lock:
            if len(self._objects) == self._objects.maxlen:
                self._bytes -= self._objects[0].size
            self._objects.append(carried)
            self._bytes += carried.size
            while self._bytes > self.max_bytes:
                self._bytes -= self._objects.popleft().size

    def snapshot(self) -> list[CarriedObject]:
        """The kept objects, oldest first."""
        with self._lock:
            return list(self._objects)
