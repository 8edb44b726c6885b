"""What the loops need from the bucket and from a doorbell: the transport's small interfaces."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

LIST_LIMIT = 1000
"""ListObjectsV2 returns at most this many keys per request."""
DELETE_BATCH = 1000
"""DeleteObjects takes at most this many keys per request."""


class StoreError(RuntimeError):
    """A request that failed for good; kind is a label (throttled, timeout, unreachable, denied, ...)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing shows it."""

    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a listing, in the order the bucket gave it; truncated when more keys follow."""

    objects: tuple[ObjectInfo, ...]
    truncated: bool = False
    next_token: str = ""
    """Where the next page starts, opaque (the bucket's continuation token); '' on the last page."""

    def __iter__(self) -> Iterator[ObjectInfo]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)


class Bucket(Protocol):
    """Objects under keys: what S3, any S3-compatible API, or memory offers the loops."""

    @property
    def name(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    def put(self, key: str, body: bytes) -> None:
        """Store body under key."""
        ...

    def list_objects(self, prefix: str = "", max_keys: int = LIST_LIMIT, start_after: str = "",
                     token: str = "") -> Listing:
        """One page of the keys under prefix that sort after start_after, or from a previous page's token."""
        ...

    def get(self, key: str, limit: int = ...) -> bytes | None:
        """The object's first limit + 1 bytes at most (more than limit means larger); None once it is gone."""
        ...

    def delete(self, keys: Sequence[str]) -> list[str]:
        """Delete up to DELETE_BATCH keys in one request; return those that could not be deleted."""
        ...

    def delete_one(self, key: str) -> None:
        """Delete one key in a request of its own (for keys a batch delete refuses)."""
        ...

    def check_access(self, prefix: str) -> None:
        """Make sure the bucket exists and lists under prefix; raise StoreError naming the fix."""
        ...


@dataclass(frozen=True, slots=True)
class Bell:
    """A doorbell's note: an object was put under key, size bytes long.

    As received: sender is who the message says rang (None when it does not say), and verified is
    True when its MAC proved that sender (agent.sealing.bells).
    """

    key: str
    size: int
    sender: ipaddress.IPv6Address | None = None
    verified: bool = False


class Doorbell(Protocol):
    """Tells a receiver which objects were just put for it, so it need not list its inbox to find them."""

    unknown_for: float
    """Seconds for which senders may not ring this node yet (its queue was just made): listen by listing."""

    def ring(self, destination: ipaddress.IPv6Address, bells: Sequence[Bell]) -> bool:
        """Tell destination's node about objects put (or being put) into its inbox; False if it has no doorbell."""
        ...

    def wait(self, timeout: float, stop: threading.Event) -> list[Bell]:
        """Wait up to timeout for bells rung for this node; [] when none came."""
        ...

    def close(self) -> None:
        """Wake any waiter and release what the doorbell holds."""
        ...
