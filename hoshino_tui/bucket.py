"""The inspector's objects: those listed in the bucket and those the node carried, parsed by key and grouped."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from agent import packets, wire
from agent.events import Direction, PacketSeen, Verdict
from agent.recent import CarriedObject


class ObjectInfoLike(Protocol):
    """One listed object, as agent.transport.ObjectInfo describes it."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def last_modified(self) -> datetime: ...


class StoreLike(Protocol):
    """The read side of agent.transport.Bucket."""

    def list_objects(self, prefix: str = "", max_keys: int = 1000) -> Iterable[ObjectInfoLike]: ...

    def get(self, key: str) -> bytes | None:
        """The object's body, or None once it is gone (delivered and deleted)."""
        ...


MAX_KEYS = 1000
"""The most keys one listing of the bucket returns (S3's page): the inspector and the network screen say so."""

Where = Literal["bucket", "sent", "received"]
WHERE_ORDER: dict[str, int] = {"bucket": 0, "sent": 1, "received": 2}


@dataclass(frozen=True, slots=True)
class BucketObject:
    """An object the inspector shows; destination and sent_at are empty when the key is not one the agent makes.

    where: waiting in the bucket, or sent or received by this node (kept in its ring of recent objects);
    gone: delivered and deleted since it was listed, shown still because it was selected."""

    key: str
    size: int
    last_modified: datetime
    destination: str
    sent_at: datetime | None
    where: Where = "bucket"
    gone: bool = False
    sealed: bool = False


def _parse(key: str, key_prefix: str) -> tuple[str, datetime | None]:
    try:
        parsed = wire.parse_key(key, key_prefix)
    except wire.WireError:
        return "", None
    return parsed.destination.compressed, parsed.sent_at


def _order(obj: BucketObject) -> tuple[int, bool, str, str]:
    return WHERE_ORDER[obj.where], obj.destination == "", obj.destination, obj.key


def describe(infos: Iterable[ObjectInfoLike], key_prefix: str = "") -> list[BucketObject]:
    """Parse each listed key and sort by destination, then send order (ULIDs sort by time)."""
    objects = [BucketObject(info.key, info.size, info.last_modified, *_parse(info.key, key_prefix))
               for info in infos]
    return sorted(objects, key=_order)


class BucketListing:
    """The bucket under the key prefix, its store opened at first use from any worker thread; a call lists it
    once (the first MAX_KEYS keys), parsed."""

    def __init__(self, store_factory: Callable[[], StoreLike], key_prefix: str = "", max_keys: int = MAX_KEYS) -> None:
        self.store_factory = store_factory
        self.key_prefix = key_prefix
        self.max_keys = max_keys
        self._store: StoreLike | None = None
        self._lock = threading.Lock()

    def store(self) -> StoreLike:
        with self._lock:
            if self._store is None:
                self._store = self.store_factory()
            return self._store

    def __call__(self) -> list[BucketObject]:
        return describe(self.store().list_objects(prefix=self.key_prefix, max_keys=self.max_keys), self.key_prefix)


def describe_carried(carried: Sequence[CarriedObject], key_prefix: str = "") -> list[BucketObject]:
    """The node's recently carried objects as the inspector lists them, sent ones first."""
    objects = [
        BucketObject(obj.key, obj.size, datetime.fromtimestamp(obj.time, UTC), *_parse(obj.key, key_prefix),
                     where="sent" if obj.direction == "out" else "received", sealed=obj.sealed)
        for obj in carried
    ]
    return sorted(objects, key=_order)


def merge(listed: Sequence[BucketObject], carried: Sequence[BucketObject],
          kept: BucketObject | None = None) -> list[BucketObject]:
    """One row per key: waiting in the bucket first, then carried; kept (the selection) stays, marked gone,
    when it is in neither any more."""
    keys = {obj.key for obj in listed}
    rows = [*listed, *(obj for obj in carried if obj.key not in keys)]
    if kept is not None and all(obj.key != kept.key for obj in rows):
        rows.append(dataclasses.replace(kept, gone=True))
    return sorted(rows, key=_order)


def packets_of(obj: BucketObject, body: bytes | None) -> list[PacketSeen]:
    """What a packet filter sees of an object: its packets once its body is known, else its key and size."""
    direction: Direction = "in" if obj.where == "received" else "out"
    verdict: Verdict = "delivered" if obj.where == "received" else "sent"
    at = obj.last_modified.timestamp()
    try:
        found = wire.decode(body).packets if body is not None else []
    except wire.WireError:
        found = []
    seen = []
    for data in found:
        seen.append(dataclasses.replace(packets.seen(data, direction, obj.key, verdict), time=at))
    return seen or [PacketSeen(at, direction, "", obj.destination, "object", obj.key, obj.size, obj.key, verdict)]
