"""The inspector's view of a bucket: objects listed, parsed by key and grouped by destination."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent import wire


class ObjectInfoLike(Protocol):
    """One listed object, as agent.store.ObjectInfo describes it."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def last_modified(self) -> datetime: ...


class StoreLike(Protocol):
    """The read side of agent.store.Store."""

    def list_objects(self, prefix: str = "", max_keys: int = 1000) -> Iterable[ObjectInfoLike]: ...

    def get(self, key: str) -> bytes | None:
        """The object's body, or None once it is gone (delivered and deleted)."""
        ...


@dataclass(frozen=True, slots=True)
class BucketObject:
    """A listed object; destination and sent_at are empty when the key is not one the agent makes."""

    key: str
    size: int
    last_modified: datetime
    destination: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemoryObject:
    """An object held in memory, for a fixed bucket."""

    key: str
    size: int
    last_modified: datetime


class MemoryStore:
    """A bucket in memory with the read side of agent.store.Store: for snapshots and screenshots."""

    def __init__(self, objects: dict[str, tuple[bytes, datetime]]) -> None:
        self._objects = dict(objects)

    def list_objects(self, prefix: str = "", max_keys: int = 1000) -> list[MemoryObject]:
        keys = sorted(key for key in self._objects if key.startswith(prefix))[:max_keys]
        return [MemoryObject(key, len(self._objects[key][0]), self._objects[key][1]) for key in keys]

    def get(self, key: str) -> bytes | None:
        item = self._objects.get(key)
        return item[0] if item else None


def describe(infos: Iterable[ObjectInfoLike], key_prefix: str = "") -> list[BucketObject]:
    """Parse each listed key and sort by destination, then send order (ULIDs sort by time)."""
    objects = []
    for info in infos:
        try:
            parsed = wire.parse_key(info.key, key_prefix)
            destination, sent_at = parsed.destination.compressed, parsed.sent_at
        except wire.WireError:
            destination, sent_at = "", None
        objects.append(BucketObject(info.key, info.size, info.last_modified, destination, sent_at))
    objects.sort(key=lambda item: (item.destination == "", item.destination, item.key))
    return objects
