"""S3 access: one shared client, retries with backoff, every request counted and timed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from agent.metrics import Stats

T = TypeVar("T")
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


class StoreError(RuntimeError):
    """An S3 request that failed for good; kind is a label (throttled, timeout, unreachable, ...)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing shows it."""

    key: str
    size: int
    last_modified: datetime


def classify(error: Exception) -> tuple[str, str]:
    """(kind, message) for a failed request, in words a user can act on."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", "error"))
        message = error.response.get("Error", {}).get("Message", "") or code
        if code in THROTTLE_CODES:
            return "throttled", f"S3 is throttling requests ({code})"
        if code in DENIED_CODES:
            return "denied", f"access denied by S3 ({code}): check the credentials and the bucket policy"
        if code in ("NoSuchBucket", "404"):
            return "no_bucket", "the bucket does not exist: create it or pass the right --bucket"
        return "error", f"S3 error {code}: {message}"
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "denied", "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
    if isinstance(error, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return "timeout", f"S3 timed out: {error}"
    if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError)):
        return "unreachable", f"cannot reach S3: {error}"
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return "error", f"S3 client error: {error}"
    # Anything else from below boto3 (a connection reset mid-body, say) is a failed request too:
    # the loops must survive it, and the message names it for whoever reads the notice.
    return "error", f"S3 request failed: {type(error).__name__}: {error}"


class Store:
    """The bucket, as the agent uses it. Safe to share between threads."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        stats: Stats | None = None,
        on_health: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.bucket = bucket
        self.stats = stats or Stats()
        self._on_health = on_health
        self._healthy = True
        self._health_lock = threading.Lock()
        config = botocore.config.Config(
            retries={"total_max_attempts": 1},  # retries are ours, so every request is counted
            connect_timeout=2,
            read_timeout=10,
            max_pool_connections=32,
            tcp_keepalive=True,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(region_name=region)
        self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.endpoint = self.client.meta.endpoint_url

    @property
    def healthy(self) -> bool:
        """False while requests are failing."""
        return self._healthy

    def _health(self, healthy: bool, message: str) -> None:
        with self._health_lock:
            if healthy == self._healthy:
                return
            self._healthy = healthy
        if self._on_health:
            self._on_health(healthy, message)

    def _call(self, operation: str, request: Callable[[], T], attempts: int) -> T:
        """Send a request, retrying failures with exponential backoff; raise StoreError at the end."""
        delay = 0.05
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                result = request()
            except Exception as error:
                kind, message = classify(error)
                self.stats.s3_request(operation, time.monotonic() - started, kind)
                if kind in ("denied", "no_bucket") or attempt == attempts:
                    self._health(False, message)
                    raise StoreError(message, kind) from None
                time.sleep(delay * (4 if kind == "throttled" else 1))
                delay = min(delay * 2, 2.0)
            else:
                self.stats.s3_request(operation, time.monotonic() - started)
                self._health(True, "S3 answers again")
                return result
        raise AssertionError("unreachable")

    def check_bucket(self) -> None:
        """Make sure the bucket is there and ours to use; raise StoreError naming the fix."""
        self._call("head", lambda: self.client.head_bucket(Bucket=self.bucket), attempts=2)

    def put(self, key: str, body: bytes, attempts: int = 4) -> None:
        self._call("put", lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body), attempts)

    def get(self, key: str, attempts: int = 3) -> bytes | None:
        """The object's body, or None if it is gone."""

        def request() -> bytes | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.NoSuchKey:
                return None
            body: bytes = response["Body"].read()
            return body

        return self._call("get", request, attempts)

    def list_objects(self, prefix: str = "", max_keys: int = 1000, attempts: int = 2) -> list[ObjectInfo]:
        """Up to max_keys objects under prefix, in key order, in one request."""

        def request() -> list[ObjectInfo]:
            response: dict[str, Any] = self.client.list_objects_v2(  # type: ignore[assignment]
                Bucket=self.bucket, Prefix=prefix, MaxKeys=max_keys
            )
            return [
                ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"])
                for item in response.get("Contents", [])
            ]

        return self._call("list", request, attempts)

    def delete(self, keys: Iterable[str], attempts: int = 3) -> list[str]:
        """Delete keys in batches; return those S3 could not delete."""
        keys = list(keys)
        failed: list[str] = []
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start:start + DELETE_BATCH]]

            def request(batch: list[dict[str, str]] = batch) -> Any:
                return self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}  # type: ignore[typeddict-item]
                )

            response = self._call("delete", request, attempts)
            failed.extend(error["Key"] for error in response.get("Errors", []))
        return failed
