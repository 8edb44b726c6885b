"""The transport: where packets travel (a bucket) and how a receiver learns of them (a doorbell).

Chosen here, once, from the node's settings; the loops see only the interfaces of
agent.transport.base, and every request goes through one guard that counts, prices and retries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.config import DEFAULT_S3_CLIENT
from agent.metrics import Stats
from agent.transport.base import Bell, Bucket, Doorbell, Listing, ObjectInfo, StoreError
from agent.transport.guard import Guard, GuardedBucket
from agent.transport.memory import MemoryBucket
from agent.transport.obstore_s3 import ObstoreBucket
from agent.transport.s3 import S3Bucket, client
from agent.transport.sqs import LONG_POLL, DoorbellError, SqsDoorbell

if TYPE_CHECKING:
    from agent.clock import NodeClock

__all__ = [
    "Bell",
    "Bucket",
    "Doorbell",
    "DoorbellError",
    "Guard",
    "GuardedBucket",
    "Listing",
    "MemoryBucket",
    "ObjectInfo",
    "ObstoreBucket",
    "S3Bucket",
    "StoreError",
    "make_doorbell",
    "open_bucket",
    "open_doorbell",
    "raw_bucket",
]


@dataclass(frozen=True)
class S3Client:
    """One way of sending S3 requests, and what it supports (every bucket the loops use needs NEEDED)."""

    make: Callable[..., Bucket]
    """(bucket, endpoint URL, region, firewall mark of its connections or None, clock=NodeClock or None)."""
    supports: frozenset[str]
    about: str


NEEDED = frozenset({"ranged_get", "batch_delete", "start_after", "continuation_token", "max_keys", "any_key"})
"""What the loops ask of a bucket: ranged reads, DeleteObjects, listing from a key or a token with MaxKeys,
and any key S3 allows, exactly as written (a hostile writer picks the keys in an inbox)."""
S3_CLIENTS = {
    "boto3": S3Client(S3Bucket, S3Bucket.SUPPORTS, "AWS's Python SDK: ~1 ms of CPU per request"),
    "obstore": S3Client(ObstoreBucket, ObstoreBucket.SUPPORTS,
                        "Rust's object_store (LIST and keys it cannot name through boto3): ~0.2-0.3 ms per request"),
}


MARKS_SOCKETS = "socket_mark"
"""A client that can put a firewall mark on its connections (an exit node's client needs it: agent.gateway)."""


def raw_bucket(bucket: str, endpoint_url: str | None = None, region: str | None = None,
               s3_client: str = DEFAULT_S3_CLIENT, mark: int | None = None, *,
               clock: NodeClock | None = None) -> Bucket:
    """The bucket through the named client, its requests not yet guarded. A marked bucket needs a client
    that marks its connections: the one that cannot (obstore: reqwest takes no socket options) gives way
    to boto3, which can, rather than let the agent's own requests loop into its tunnel."""
    chosen = S3_CLIENTS.get(s3_client)
    if chosen is None:
        raise ValueError(f"no S3 client {s3_client!r}: choose one of {', '.join(S3_CLIENTS)}")
    if missing := NEEDED - chosen.supports:
        raise ValueError(f"S3 client {s3_client} lacks {', '.join(sorted(missing))}")
    if mark is not None and MARKS_SOCKETS not in chosen.supports:
        chosen = S3_CLIENTS["boto3"]
    return chosen.make(bucket, endpoint_url, region, mark, clock=clock)


def open_bucket(bucket: str, endpoint_url: str | None = None, region: str | None = None,
                guard: Guard | None = None, mark: int | None = None, *,
                s3_client: str = DEFAULT_S3_CLIENT, clock: NodeClock | None = None) -> GuardedBucket:
    """The S3 bucket (AWS or any S3-compatible endpoint) through the named client, every request through
    the guard (or one of its own).

    mark: the firewall mark of its connections (see agent.gateway); clock, when given, learns the
    bucket's time from the responses (obstore's bucket: from its listings, which boto3 sends)."""
    return GuardedBucket(raw_bucket(bucket, endpoint_url, region, s3_client, mark, clock=clock),
                         guard or Guard(Stats()))


def make_doorbell(endpoint_url: str | None, region: str | None, guard: Guard, address: ipaddress.IPv6Address,
                  key_prefix: str = "", report: Callable[[str], None] | None = None,
                  mark: int | None = None) -> SqsDoorbell:
    """A doorbell that can ring others; open() it to wait on this node's own queue. Sends no request yet.

    report: told once of each destination that cannot be rung; mark: the firewall mark of its connections."""
    def connect() -> Any:
        return client("sqs", endpoint_url, region or "us-east-1", read_timeout=LONG_POLL + 10, mark=mark)

    return SqsDoorbell(connect, guard, address, key_prefix, report)


def open_doorbell(endpoint_url: str | None, region: str | None, guard: Guard, address: ipaddress.IPv6Address,
                  key_prefix: str = "") -> SqsDoorbell:
    """This node's SQS doorbell, its queue found or created; raise DoorbellError when it cannot be had."""
    doorbell = make_doorbell(endpoint_url, region, guard, address, key_prefix)
    doorbell.open()
    return doorbell
