"""A node's inbox in the bucket: which keys to list, and which objects to refuse before reading them."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent import wire
from agent.transport.base import LIST_LIMIT, Bucket, ObjectInfo

WINDOW_PAGES = 10
"""Pages of a window listing per poll: more keys than S3 takes into one prefix in the window."""
SWEEP_PAGES = 5
"""Pages per sweep; the next sweep goes on where this one stopped."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An object worth fetching: its key, when it was sent, and how much of it to read at most."""

    key: str
    sent_at: float
    limit: int
    rung: bool = False
    """Announced by a doorbell rather than listed: its PUT may still be under way."""
    recheck: bool = False
    """A handled key seen again after its delete: fetched only to learn whether it was PUT again."""


class Inbox:
    """Lists `{prefix}{address}/` and judges keys by their form, their size and their age.

    Only objects made within max_age (plus a clock-skew allowance) are accepted: older ones are
    stale, since nothing a transport layer retransmits gains from a packet that old, and keys
    from too far in the future are refused too. So the regular listing starts at the window's
    floor, and keys left behind below it (undeletable ones, a vanished sender's) cost nothing;
    a sweep now and then lists the whole inbox to refuse and delete what lies below the floor.
    """

    def __init__(self, bucket: Bucket, address: ipaddress.IPv6Address, key_prefix: str = "", *,
                 max_age: float, skew: float, clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.address = address
        self.key_prefix = key_prefix
        self.prefix = wire.inbox(key_prefix, address)
        self.max_age = max_age
        self.skew = skew
        self.clock = clock
        self._sweep_token = ""

    def floor(self) -> float:
        """The oldest send time still accepted."""
        return self.clock() - self.max_age - self.skew

    def judge(self, key: str, size: int | None) -> tuple[str, float]:
        """(why the object must not be fetched or '', its send time) from its key and announced size."""
        try:
            parsed = wire.parse_key(key, self.key_prefix)
        except wire.WireError:
            return "bad_key", 0.0
        if parsed.destination != self.address or key[:len(self.prefix)] != self.prefix:
            return "bad_key", 0.0
        sent_at = parsed.timestamp
        now = self.clock()
        if sent_at > now + self.skew:
            return "future", sent_at
        if sent_at < now - self.max_age - self.skew:
            return "stale", sent_at
        if size is not None and size > wire.MAX_OBJECT_BYTES:
            return "oversized_object", sent_at
        return "", sent_at

    def list_from(self, since: float) -> list[ObjectInfo]:
        """Keys sent at `since` or later (at most WINDOW_PAGES pages), in key order."""
        start = f"{self.prefix}{wire.ulid_floor(max(since, self.floor()))}"
        return self._pages(start, WINDOW_PAGES)[0]

    def sweep(self) -> list[ObjectInfo]:
        """A few pages of the whole inbox, going on from where the last sweep stopped."""
        listed, self._sweep_token = self._pages("", SWEEP_PAGES, self._sweep_token)
        return listed

    def _pages(self, start_after: str, pages: int, token: str = "") -> tuple[list[ObjectInfo], str]:
        """Up to `pages` pages in key order, and the token to go on from ('' when the listing ended).

        Pages follow the bucket's continuation token, never a key of ours: a hostile key (with
        control characters, say) cannot break the next request.
        """
        listed: list[ObjectInfo] = []
        for _ in range(pages):
            page = self.bucket.list_objects(self.prefix, LIST_LIMIT, start_after, token)
            listed.extend(page.objects)
            token = page.next_token if page.truncated else ""
            if not token:
                break
        # Sorted here, not trusted to the listing: S3 Express directory buckets list in no order.
        listed.sort(key=lambda item: item.key)
        return listed, token
