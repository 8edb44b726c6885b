"""The SQS doorbell: a sender rings the receiver's queue with the keys it put; the receiver long-polls.

An idle receiver then costs one ReceiveMessage every 20 seconds instead of a LIST per heartbeat,
and a packet is fetched as soon as its bell rings instead of at the next poll.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.transport.base import Bell, StoreError
from agent.transport.bell_format import BellProver, decode_message, encode_bells
from agent.transport.guard import Guard

LONG_POLL = 20
"""Seconds a ReceiveMessage waits for a bell: SQS's longest."""
QUEUE_ATTRIBUTES = {"MessageRetentionPeriod": "60", "ReceiveMessageWaitTimeSeconds": str(LONG_POLL),
                    "VisibilityTimeout": "30"}
"""A queue the node creates for itself: bells are worthless after a minute (SQS's shortest retention)."""
MISSING_QUEUE_RECHECK = (1.0, 60.0)
"""A destination without a queue (a polling node, or one still starting) is asked again after 1 s,
then twice as long each time up to a minute: a node that starts just after its peer asked is rung
within a second or two, and one that polls costs a request a minute while it is sent to."""
DELETE_WITHIN = 1
"""Seconds of long poll while received bells wait to be deleted (their visibility timeout is 30 s)."""
SILENCE = 600.0
"""How long a node that cannot reach SQS at all rings nobody (a bucket without SQS beside it)."""


class DoorbellError(RuntimeError):
    """The doorbell cannot be used; the node polls instead."""


QUEUE_NAME_LIMIT = 80
"""SQS's longest queue name."""


def _queue_name(key_prefix: str, address: ipaddress.IPv6Address) -> str:
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", key_prefix.rstrip("/"))
    return f"hoshino-{prefix + '-' if prefix else ''}{address.compressed.replace(':', '-')}"


def queue_name_problem(key_prefix: str, address: ipaddress.IPv6Address) -> str:
    """Why the node at address can have no queue under key_prefix (its name too long), or ''."""
    name = _queue_name(key_prefix, address)
    if len(name) <= QUEUE_NAME_LIMIT:
        return ""
    room = QUEUE_NAME_LIMIT - len(_queue_name("", address)) - 1
    return (f"--key-prefix {key_prefix!r} is too long for a doorbell: the queue name {name!r} would be "
            f"{len(name)} characters long, over the {QUEUE_NAME_LIMIT} characters SQS allows; shorten the prefix "
            f"to {room} characters before its '/', or pass --wakeup poll")


def queue_name(key_prefix: str, address: ipaddress.IPv6Address) -> str:
    """The queue of the node at address: hoshino-{prefix-}{address with ':' as '-'} (docs/wire-format.md)."""
    if problem := queue_name_problem(key_prefix, address):
        raise DoorbellError(problem)
    return _queue_name(key_prefix, address)


class SqsDoorbell:
    """Each node's queue is named from its address; its own is created if missing (open()).

    Any node rings a destination that has a queue, whether it waits on a queue itself or polls:
    ringing needs no queue of one's own. Not reaching SQS silences the ringing for a while and
    never makes the node unhealthy, so a bucket with no SQS beside it (R2, MinIO) costs nothing.
    """

    def __init__(self, connect: Callable[[], Any], guard: Guard, address: ipaddress.IPv6Address,
                 key_prefix: str = "", report: Callable[[str], None] | None = None) -> None:
        """connect makes the SQS client when it is first needed (a polling node may never ring); report
        says, once per destination, that one cannot be rung (its queue name would be too long)."""
        self._connect = connect
        self._client: Any = None
        self.guard = guard
        self.address = address
        self.key_prefix = key_prefix
        self.report = report
        self.name = ""
        """This node's queue, named by open(): a node that polls never needs a name of its own."""
        self.url = ""
        self.created = False
        """Whether open() had to create this node's queue (it found none)."""
        self.unknown_for = 0.0
        self._urls: dict[ipaddress.IPv6Address, tuple[str, float, float]] = {}
        """Destination -> (queue URL or '' for none, when to ask again if none, the wait before that)."""
        self._lock = threading.Lock()
        self._deleter = ThreadPoolExecutor(1, thread_name_prefix="hoshino-bell-delete")
        self._closing = False
        self.unringable = 0
        """How many destinations cannot be rung: their queue name would be too long (each told once)."""
        self._silent_until = 0.0
        self._received: list[str] = []
        """Receipt handles of bells received and not yet deleted."""
        self.prover: BellProver | None = None
        """A sealed node's: its bells carry a MAC, and the bells it receives are verified."""

    @property
    def client(self) -> Any:
        """The SQS client, made on first use: ~8 MiB that a node which never rings need not hold."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def open(self) -> None:
        """Find this node's queue, or create it; raise DoorbellError naming why it cannot be used."""
        self.name = queue_name(self.key_prefix, self.address)
        try:
            try:
                self.url = self._get_url(self.name)
            except StoreError as error:
                if error.kind != "no_queue":
                    raise
                self.url = self.guard.call("sqs", "create", lambda: self.client.create_queue(
                    QueueName=self.name, Attributes=QUEUE_ATTRIBUTES)["QueueUrl"], attempts=2)
                self.created = True
                self.unknown_for = MISSING_QUEUE_RECHECK[1]  # senders that found none ask again within this
        except StoreError as error:
            raise DoorbellError(f"SQS queue {self.name}: {error}") from None
        if not self.created:
            # An earlier process of this node that died in a long poll (killed, crashed) leaves it open at the
            # service for up to LONG_POLL seconds, and the first bell rung meanwhile would go to it and stay
            # hidden for its visibility timeout, by when its object is stale. An empty bell ends that poll
            # instead; with no such poll, this node reads it and drops it.
            self._ring_self(quiet=True)

    def _ring_self(self, quiet: bool = False) -> None:
        """An empty bell to this node's own queue: it ends a long poll waiting on it, and carries nothing."""
        with contextlib.suppress(StoreError):
            self.guard.call("sqs", "send", lambda: self.client.send_message(
                QueueUrl=self.url, MessageBody=encode_bells([])), attempts=1, quiet=quiet)

    def _get_url(self, name: str, quiet: bool = False) -> str:
        url: str = self.guard.call("sqs", "get_url", lambda: self.client.get_queue_url(QueueName=name)["QueueUrl"],
                                   attempts=2, quiet=quiet)
        return url

    def _url_of(self, destination: ipaddress.IPv6Address) -> str:
        """The destination's queue URL ('' when it has none: it polls), asked again now and then."""
        with self._lock:
            cached = self._urls.get(destination)
        if cached is not None and (cached[0] or time.monotonic() < cached[1]):
            return cached[0]
        if problem := queue_name_problem(self.key_prefix, destination):
            # No node can have that queue (each refuses to start with it): it polls, and is never rung.
            with self._lock:
                self._urls[destination] = ("", float("inf"), 0.0)
                self.unringable += 1
            if self.report is not None:
                self.report(f"not ringing {destination}: {problem}")
            return ""
        try:
            url = self._get_url(queue_name(self.key_prefix, destination), quiet=True)
        except StoreError as error:
            if error.kind != "no_queue":
                self._silent_until = time.monotonic() + SILENCE
                raise
            url = ""
        first, longest = MISSING_QUEUE_RECHECK
        wait = min(longest, cached[2] * 2) if cached is not None else first
        with self._lock:
            self._urls[destination] = (url, time.monotonic() + wait, wait)
        return url

    def ring(self, destination: ipaddress.IPv6Address, bells: Sequence[Bell]) -> bool:
        """Ring destination's queue; False when it has none (it polls) or SQS cannot be reached."""
        if time.monotonic() < self._silent_until:
            return False
        try:
            url = self._url_of(destination)
            if not url:
                return False
            body = encode_bells(bells, self.address, self.prover.sign(destination, bells) if self.prover else b"")
            self.guard.call("sqs", "send", lambda: self.client.send_message(QueueUrl=url, MessageBody=body),
                            attempts=2, payload=len(body), quiet=True)
        except StoreError:
            return False
        return True

    def wait(self, timeout: float, stop: threading.Event) -> list[Bell]:
        """Long-poll for bells. Received messages are deleted ten to a request: while some wait to be
        deleted the poll is kept short (a second), so none outlives its visibility timeout."""
        if stop.is_set() or self._closing:
            return []
        with self._lock:
            waiting = bool(self._received)
        seconds = int(min(DELETE_WITHIN if waiting else LONG_POLL, max(0.0, timeout)))
        response = self.guard.call("sqs", "receive", lambda: self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=seconds), attempts=1)
        messages = response.get("Messages", [])
        self._queue_deletes([message["ReceiptHandle"] for message in messages], flush=not messages)
        bells: list[Bell] = []
        for message in messages:
            try:
                received = decode_message(message.get("Body", ""))
            except ValueError:
                self.guard.stats.drop("bogus_bell")
                continue
            verified = bool(self.prover is not None and received.mac and received.sender is not None
                            and self.prover.verify(received, self.address))
            bells += [Bell(bell.key, bell.size, received.sender, verified) for bell in received.bells]
        return bells

    def _queue_deletes(self, handles: list[str], flush: bool) -> None:
        """Delete received messages in batches of ten; flush: the rest too (the queue went quiet)."""
        with self._lock:
            self._received += handles
            while self._received and (len(self._received) >= 10 or flush) and not self._closing:
                batch, self._received = self._received[:10], self._received[10:]
                entries = [{"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(batch)]
                self._deleter.submit(self._delete, entries)

    def _delete(self, entries: list[dict[str, str]]) -> None:
        # A bell delivered twice costs one GET: it is never handled twice.
        with contextlib.suppress(StoreError):
            self.guard.call("sqs", "delete", lambda: self.client.delete_message_batch(
                QueueUrl=self.url, Entries=entries), attempts=2)

    def close(self) -> None:
        """Wake a receiver blocked in its long poll (a bell to itself), and let pending deletes finish."""
        with self._lock:
            self._closing = True
        if self.url:
            self._ring_self()
        self._deleter.shutdown(wait=True)
