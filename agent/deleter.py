"""Deletes handled objects off the delivery path, in batches, surviving keys the bucket will not delete."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable

from agent.metrics import Stats
from agent.transport.base import DELETE_BATCH, Bucket, StoreError

DELETE_ATTEMPTS = 3
"""Single deletes of one key, each after the bucket answered and refused, before it is given up."""
TRANSIENT = ("unreachable", "timeout", "throttled", "connection")
"""Failures of the service as a whole: the batch waits and is tried again, no key is blamed."""
BACKOFF_MAX = 5.0
Report = Callable[[str], None]
Deleted = Callable[[list[str]], None]
GivenUp = Callable[[str], None]


class Deleter:
    """A queue of handled keys and the thread that deletes them.

    A batch the bucket refuses (an error for the whole request, or errors for some keys) falls back
    to deleting its keys one by one; a key that cannot be deleted after DELETE_ATTEMPTS is given up
    (the ledger remembers it), counted and reported once, so one bad key never holds the others back. When the
    service is down the batch waits with backoff instead: nobody's fault, no key is blamed.
    """

    def __init__(self, bucket: Bucket, stats: Stats, report: Report | None = None,
                 deleted: Deleted | None = None, given_up: GivenUp | None = None) -> None:
        self.bucket = bucket
        self.stats = stats
        self._report = report
        self._deleted = deleted
        self._given_up = given_up
        self._queue: queue.Queue[str] = queue.Queue()
        self._tries: dict[str, int] = {}
        self._reported = False
        self._backoff = 0.0

    def put(self, key: str) -> None:
        """Queue a handled key for deletion."""
        self._queue.put(key)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def delete_once(self, wait: float = 0.0) -> bool:
        """Delete one batch of queued keys; True if the service answered (whatever it refused)."""
        keys: list[str] = []
        try:
            keys.append(self._queue.get(timeout=wait) if wait else self._queue.get_nowait())
            while len(keys) < DELETE_BATCH:
                keys.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if not keys:
            return True
        try:
            refused = self.bucket.delete(keys)
        except StoreError as error:
            if error.kind in TRANSIENT:
                for key in keys:
                    self._queue.put(key)
                return False
            refused = keys
        if self._deleted is not None and len(refused) < len(keys):
            refused_set = set(refused)
            self._deleted([key for key in keys if key not in refused_set])
        for key in refused:
            self._delete_alone(key)
        return True

    def _delete_alone(self, key: str) -> None:
        try:
            self.bucket.delete_one(key)
        except StoreError as error:
            if error.kind in TRANSIENT:
                self._queue.put(key)
                return
            tries = self._tries.get(key, 0) + 1
            if tries < DELETE_ATTEMPTS:
                self._tries[key] = tries
                self._queue.put(key)
                return
            self._give_up(key, str(error))
            return
        self._tries.pop(key, None)
        if self._deleted is not None:
            self._deleted([key])

    def _give_up(self, key: str, why: str) -> None:
        self._tries.pop(key, None)
        if self._given_up is not None:
            self._given_up(key)
        self.stats.undeletable_object()
        first, self._reported = not self._reported, True
        if first and self._report is not None:
            self._report(f"cannot delete {key!r} ({why}): given up after {DELETE_ATTEMPTS} tries; "
                         "the bucket's lifecycle rule will remove it, and it is never handled again")

    def run(self, stop: threading.Event) -> None:
        """Delete as keys come; back off while the service is down; finish the queue on stop if it answers."""
        while not stop.is_set():
            if self.delete_once(wait=0.1):
                self._backoff = 0.0
            else:
                self._backoff = min(BACKOFF_MAX, max(0.1, self._backoff * 2))
                stop.wait(random.uniform(self._backoff / 2, self._backoff))
        for _ in range(10):  # a bounded effort: stopping must not wait on a dead endpoint
            if self._queue.empty() or not self.delete_once():
                break
