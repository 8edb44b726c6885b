"""A bucket in memory with the S3 bucket's behaviour: for unit tests, the dashboard's tests and replays."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from agent.transport.base import LIST_LIMIT, Listing, ObjectInfo
from agent.wire import MAX_OBJECT_BYTES


class MemoryBucket:
    """Keys in byte order, ranged reads, batch deletes; safe between threads."""

    def __init__(self, name: str = "memory", objects: dict[str, tuple[bytes, datetime]] | None = None) -> None:
        self._name = name
        self._objects: dict[str, tuple[bytes, datetime]] = dict(objects or {})
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def endpoint(self) -> str:
        return "memory:"

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self._objects[key] = (bytes(body), datetime.now(UTC))

    def list_objects(self, prefix: str = "", max_keys: int = LIST_LIMIT, start_after: str = "",
                     token: str = "") -> Listing:
        after = token or start_after  # this bucket's token is simply the last key of the page before
        with self._lock:
            keys = sorted(key for key in self._objects if key.startswith(prefix) and key > after)
            page = keys[:max_keys]
            more = len(keys) > max_keys
            return Listing(
                tuple(ObjectInfo(key, len(self._objects[key][0]), self._objects[key][1]) for key in page),
                more, page[-1] if more else "",
            )

    def get(self, key: str, limit: int = MAX_OBJECT_BYTES) -> bytes | None:
        with self._lock:
            item = self._objects.get(key)
        return None if item is None else item[0][:limit + 1]

    def delete(self, keys: Sequence[str]) -> list[str]:
        with self._lock:
            for key in keys:
                self._objects.pop(key, None)
        return []

    def delete_one(self, key: str) -> None:
        self.delete([key])

    def check_access(self, prefix: str) -> None:
        return None

    def keys(self) -> list[str]:
        """Every key held, in order."""
        with self._lock:
            return sorted(self._objects)
