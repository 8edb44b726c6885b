"""The transport: where packets travel (a bucket) and how a receiver learns of them (a doorbell).

Chosen here, once, from the node's settings; the loops see only the interfaces of
agent.transport.base, and every request goes through one guard that counts, prices and retries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.metrics import Stats
from agent.transport.base import Bell, Bucket, Doorbell, Listing, ObjectInfo, StoreError
from agent.transport.guard import Guard, GuardedBucket
from agent.transport.memory import MemoryBucket
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
    "StoreError",
    "make_doorbell",
    "open_bucket",
    "open_doorbell",
]


def open_bucket(bucket: str, endpoint_url: str | None = None, region: str | None = None,
                guard: Guard | None = None, mark: int | None = None, *,
                clock: NodeClock | None = None) -> GuardedBucket:
    """The S3 bucket (AWS or any S3-compatible endpoint), every request through the guard (or one of its own).

    mark: the firewall mark of its connections (see agent.gateway); clock, when given, learns the
    bucket's time from every response."""
    return GuardedBucket(S3Bucket(bucket, endpoint_url, region, mark, clock=clock), guard or Guard(Stats()))


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
