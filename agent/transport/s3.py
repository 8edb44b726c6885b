"""A bucket on S3 or any S3-compatible API, through one boto3 client shared between threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
import botocore.config

from agent.transport.base import LIST_LIMIT, Listing, ObjectInfo
from agent.wire import MAX_OBJECT_BYTES

if TYPE_CHECKING:
    from agent.clock import NodeClock

CLIENT_CONFIG = botocore.config.Config(
    retries={"total_max_attempts": 1},  # retries are the guard's, so every request is counted
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=32,
    tcp_keepalive=True,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
"""How every client of the agent talks to AWS: no hidden retries, short connect timeout, a wide pool."""


SO_MARK = getattr(socket, "SO_MARK", 36)


def client(service: str, endpoint_url: str | None, region: str | None, read_timeout: float | None = None,
           mark: int | None = None, session: boto3.session.Session | None = None) -> Any:
    """A boto3 client with the agent's settings (a long poll needs a longer read timeout).

    mark: a firewall mark on every connection it opens, so policy routing keeps them off the tunnel
    when the tunnel carries the default route (--exit-node); session: whose credential chain (default:
    a new one).
    """
    config = CLIENT_CONFIG if read_timeout is None else CLIENT_CONFIG.merge(
        botocore.config.Config(read_timeout=read_timeout))
    # Any: the stubs know each service by name only
    chain: Any = session or boto3.session.Session(region_name=region)
    made = chain.client(service, endpoint_url=endpoint_url, config=config)
    if mark is not None:
        mark_sockets(made, mark)
    return made


def mark_sockets(made: Any, mark: int) -> None:
    """Set SO_MARK on every connection a boto3 client opens, before it opens any.

    This botocore takes no socket options in its Config: they are the list its HTTP session hands to
    every connection pool, so the mark joins that list (tests/test_exit_node.py checks it on a socket).
    """
    options = getattr(getattr(getattr(made, "_endpoint", None), "http_session", None), "_socket_options", None)
    if not isinstance(options, list):
        raise RuntimeError("this botocore keeps no socket options list: cannot mark the agent's connections")
    options.append((socket.SOL_SOCKET, SO_MARK, mark))


class S3Bucket:
    """Raw S3 requests, one each; failures raise what boto3 raises (the guard classifies them)."""

    SUPPORTS: ClassVar[frozenset[str]] = frozenset(
        {"ranged_get", "batch_delete", "start_after", "continuation_token", "max_keys", "any_key", "socket_mark"})

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str | None = None,
                 mark: int | None = None, session: boto3.session.Session | None = None, *,
                 clock: NodeClock | None = None) -> None:
        self.client = client("s3", endpoint_url, region, mark=mark, session=session)
        self._bucket = bucket
        if clock is not None:
            observe_dates(self.client, clock)

    @property
    def name(self) -> str:
        return self._bucket

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self._bucket, Key=key, Body=body)

    def list_objects(self, prefix: str = "", max_keys: int = LIST_LIMIT, start_after: str = "",
                     token: str = "") -> Listing:
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if token:
            arguments["ContinuationToken"] = token
        elif start_after:
            arguments["StartAfter"] = start_after
        response = self.client.list_objects_v2(**arguments)
        return Listing(
            tuple(ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"])
                  for item in response.get("Contents", [])),
            bool(response.get("IsTruncated")),
            str(response.get("NextContinuationToken", "")),
        )

    def get(self, key: str, limit: int = MAX_OBJECT_BYTES) -> bytes | None:
        # A ranged read: whatever the listing said, no more than limit + 1 bytes cross the wire.
        try:
            response = self.client.get_object(Bucket=self._bucket, Key=key, Range=f"bytes=0-{limit}")
        except self.client.exceptions.NoSuchKey:
            return None
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # an empty object: no byte 0 to start the range at
            raise
        with response["Body"] as body:
            data: bytes = body.read(limit + 1)
        # botocore checks the length only when a body is read whole: a connection cut mid-body would
        # otherwise hand over the first part as if it were the object.
        expected = min(int(response.get("ContentLength", len(data))), limit + 1)
        if len(data) < expected:
            raise botocore.exceptions.IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
        return data

    def delete(self, keys: Sequence[str]) -> list[str]:
        response = self.client.delete_objects(
            Bucket=self._bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        return [error["Key"] for error in response.get("Errors", [])]

    def delete_one(self, key: str) -> None:
        self.client.delete_object(Bucket=self._bucket, Key=key)

    def check_access(self, prefix: str) -> None:
        # A listing of our own inbox, not HeadBucket: a least-privilege policy lets a node list its
        # inbox only, and HeadBucket needs the bucket-wide permission.
        self.list_objects(prefix, max_keys=1)



def observe_dates(s3: Any, clock: NodeClock) -> None:
    """Tell clock the `Date` of every response of this client, with when its request left and its answer came.

    Two event handlers on botocore's own path, in the requesting thread: a monotonic reading before the
    request is sent, a header lookup after the call (its parsing is cached for the second it names).
    """
    sent = threading.local()

    def before_send(**_: Any) -> None:
        sent.at = time.monotonic()

    def after_call(http_response: Any = None, **_: Any) -> None:
        started = getattr(sent, "at", None)
        if started is None or http_response is None:
            return
        sent.at = None
        clock.observe_date(http_response.headers.get("Date"), started, time.monotonic())

    s3.meta.events.register("before-send.s3", before_send)
    s3.meta.events.register("after-call.s3", after_call)
