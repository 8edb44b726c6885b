"""Every request, once: counted, timed, priced, retried with jittered backoff, its failure named."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import botocore.exceptions
import obstore.exceptions

from agent.metrics import Stats
from agent.transport import obstore_s3
from agent.transport.base import Bucket, Listing, StoreError
from agent.wire import MAX_OBJECT_BYTES

T = TypeVar("T")
THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503",
                  "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled"}
DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                "InvalidClientTokenId", "AccessDeniedException"}
NO_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
FINAL_KINDS = ("denied", "no_bucket", "no_queue")
"""Failures that no retry mends."""
RETRY_BASE = 0.05
THROTTLE_BASE = 0.2
BACKOFF_CAP = 5.0
Health = Callable[[bool, str], None]


def classify(error: Exception, service: str = "S3") -> tuple[str, str]:
    """(kind, message) for a failed request to service, in words a user can act on, whichever client sent it."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", "error"))
        return answered(code, error.response.get("Error", {}).get("Message", "") or code, service)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "denied", NO_CREDENTIALS
    if isinstance(error, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return "timeout", f"{service} timed out: {error}"
    if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError)):
        return "unreachable", f"cannot reach {service}: {error}"
    if isinstance(error, (botocore.exceptions.HTTPClientError, botocore.exceptions.ResponseStreamingError,
                          botocore.exceptions.IncompleteReadError)):
        return "connection", f"the connection to {service} broke mid-request: {error}"
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return "error", f"{service} client error: {error}"
    if isinstance(error, (obstore.exceptions.BaseError, FileNotFoundError)):
        return classify_obstore(error, service)
    # Anything else from below the client (a connection reset mid-body, say) is a failed request too:
    # the loops must survive it, and the message names it for whoever reads the notice.
    return "error", f"{service} request failed: {type(error).__name__}: {error}"


NO_CREDENTIALS = "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"


def answered(code: str, message: str, service: str) -> tuple[str, str]:
    """(kind, message) for a request the service answered with an error code."""
    if code in THROTTLE_CODES:
        return "throttled", f"{service} is throttling requests ({code})"
    if code in DENIED_CODES:
        return "denied", f"access denied by {service} ({code}): check the credentials and the policy"
    if code in ("NoSuchBucket", "404"):
        return "no_bucket", "the bucket does not exist: create it or pass the right --bucket"
    if code in NO_QUEUE_CODES:
        return "no_queue", "the SQS queue does not exist"
    return "error", f"{service} error {code}: {message}"


OBSTORE_FAILURES = {"Connect": "unreachable", "Timeout": "timeout"}
"""How obstore names a request that got no answer, as the kinds above (any other: the connection broke)."""


def classify_obstore(error: Exception, service: str) -> tuple[str, str]:
    """obstore's errors, as boto3's: it names S3's code and the HTTP failure in its message only."""
    text = str(error)
    summary = text.split("\n", 1)[0][:500]
    if code := obstore_s3.error_code(error):
        return answered(code, summary, service)
    if "Unable to locate credentials" in text:
        return "denied", NO_CREDENTIALS
    if isinstance(error, (obstore.exceptions.PermissionDeniedError, obstore.exceptions.UnauthenticatedError)):
        return "denied", f"access denied by {service}: check the credentials and the policy ({summary})"
    if failure := obstore_s3.transport_failure(error):
        kind = OBSTORE_FAILURES.get(failure, "connection")
        return kind, {"unreachable": f"cannot reach {service}: {summary}", "timeout": f"{service} timed out: {summary}",
                      "connection": f"the connection to {service} broke mid-request: {summary}"}[kind]
    return "error", f"{service} request failed: {summary}"


class Guard:
    """Sends requests for every part of a node, so counting, cost, retries and health live in one place.

    Backoff is exponential with full jitter, so clients that failed together do not retry together.
    A throttling answer pauses every request of the node, not only the one that was refused: the
    request rate falls as the service asked, instead of each loop hammering on its own.
    """

    def __init__(self, stats: Stats, on_health: Health | None = None, *,
                 sleep: Callable[[float], object] = time.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.stats = stats
        self._on_health = on_health
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._healthy = True
        self._throttles = 0
        self._paused_until = 0.0

    @property
    def healthy(self) -> bool:
        """False while requests are failing."""
        return self._healthy

    def call(self, service: str, operation: str, request: Callable[[], T], attempts: int,
             payload: Callable[[T], int] | int = 0, quiet: bool = False) -> T:
        """Send a request, retrying failures; raise StoreError once it has failed for good.

        quiet: a failure of this request does not make the node unhealthy (an optional extra).
        """
        delay = RETRY_BASE
        for attempt in range(1, attempts + 1):
            self._wait_out_throttling()
            started = time.monotonic()
            try:
                result = request()
            except Exception as error:
                kind, message = classify(error, service.upper())
                self.stats.request(service, operation, time.monotonic() - started, kind)
                if kind == "throttled":
                    self._throttled()
                if kind in FINAL_KINDS or attempt == attempts:
                    if kind != "no_queue" and not quiet:
                        self._health(False, message)
                    raise StoreError(message, kind) from None
                self._sleep(self._jitter() * delay)
                delay = min(BACKOFF_CAP, delay * 2)
            else:
                size = payload(result) if callable(payload) else payload
                self.stats.request(service, operation, time.monotonic() - started, payload=size)
                if not quiet:
                    self._recovered(service)
                return result
        raise AssertionError("unreachable")

    def _throttled(self) -> None:
        with self._lock:
            self._throttles += 1
            pause = min(BACKOFF_CAP, THROTTLE_BASE * 2 ** (self._throttles - 1))
            self._paused_until = max(self._paused_until, time.monotonic() + self._jitter() * pause + pause / 2)

    def _wait_out_throttling(self) -> None:
        remaining = self._paused_until - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)

    def _recovered(self, service: str) -> None:
        with self._lock:
            self._throttles = 0
        if not self._healthy:
            self._health(True, f"{service.upper()} answers again")

    def _health(self, healthy: bool, message: str) -> None:
        with self._lock:
            if healthy == self._healthy:
                return
            self._healthy = healthy
        if self._on_health:
            self._on_health(healthy, message)


class GuardedBucket:
    """A bucket whose every request goes through the node's guard."""

    def __init__(self, inner: Bucket, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @property
    def stats(self) -> Stats:
        return self.guard.stats

    @property
    def healthy(self) -> bool:
        return self.guard.healthy

    def put(self, key: str, body: bytes, attempts: int = 4) -> None:
        self.guard.call("s3", "put", lambda: self.inner.put(key, body), attempts, payload=len(body))

    def list_objects(self, prefix: str = "", max_keys: int = 1000, start_after: str = "", token: str = "",
                     attempts: int = 2) -> Listing:
        return self.guard.call("s3", "list", lambda: self.inner.list_objects(prefix, max_keys, start_after, token),
                               attempts)

    def get(self, key: str, limit: int = MAX_OBJECT_BYTES, attempts: int = 3) -> bytes | None:
        return self.guard.call("s3", "get", lambda: self.inner.get(key, limit), attempts,
                               payload=lambda body: len(body) if body else 0)

    def delete(self, keys: Sequence[str], attempts: int = 2) -> list[str]:
        return self.guard.call("s3", "delete", lambda: self.inner.delete(keys), attempts)

    def delete_one(self, key: str, attempts: int = 2) -> None:
        self.guard.call("s3", "delete", lambda: self.inner.delete_one(key), attempts)

    def check_access(self, prefix: str) -> None:
        self.guard.call("s3", "list", lambda: self.inner.check_access(prefix), attempts=2)
