"""A bucket on S3 or any S3-compatible API through obstore (Rust's object_store): a fifth of boto3's CPU per request.

PUT, GET and DELETE go through obstore, its own retries off (the guard retries). Two things it
cannot do exactly are left to a boto3 client beside it, made with the same credential chain:
- LIST: object_store reports a key ending in '/' without that slash, and fails the whole page on a
  key it cannot parse ('a//b', '..', a control character), so a hostile writer could hide a key
  or deafen a node. boto3 lists every key as it is, with MaxKeys and continuation tokens.
- Keys object_store cannot name (the same kinds): their PUT, GET or DELETE goes through boto3 too,
  as does the lone DELETE of a key a batch was refused for.
Credentials come from boto3's chain (environment, profiles, SSO, instance roles), asked again
before they expire.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import boto3.session
import botocore.credentials
import botocore.exceptions
import obstore
import obstore.exceptions
from obstore.store import S3Store

from agent.transport.base import LIST_LIMIT, Listing
from agent.transport.s3 import S3Bucket
from agent.wire import MAX_OBJECT_BYTES

if TYPE_CHECKING:
    from agent.clock import NodeClock

CREDENTIALS_TTL = timedelta(minutes=5)
"""How long obstore keeps credentials before asking boto3 again: well inside botocore's refresh
window (temporary credentials are renewed 10-15 minutes before they expire)."""
CLIENT_OPTIONS = {"connect_timeout": "2s", "timeout": "10s", "pool_idle_timeout": "50s"}
"""As the boto3 client's: a short connect timeout, and no request longer than its read timeout."""


class BotoCredentials:
    """obstore's credential provider, backed by boto3's chain."""

    def __init__(self, credentials: botocore.credentials.Credentials | None) -> None:
        self._credentials = credentials

    def __call__(self) -> dict[str, Any]:
        if self._credentials is None:
            raise botocore.exceptions.NoCredentialsError()
        frozen = self._credentials.get_frozen_credentials()
        return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key,
                "token": frozen.token, "expires_at": datetime.now(UTC) + CREDENTIALS_TTL}


def nameable(key: str) -> bool:
    """Whether object_store names key exactly. It drops a leading or trailing '/' without a word, and
    refuses an empty, '.' or '..' segment and control characters."""
    return (bool(key) and not any(segment in ("", ".", "..") for segment in key.split("/"))
            and not any(ord(char) < 0x20 or ord(char) == 0x7F for char in key))


class ObstoreBucket:
    """Raw S3 requests, one each; failures raise what obstore raises (the guard classifies them)."""

    SUPPORTS: ClassVar[frozenset[str]] = frozenset(
        {"ranged_get", "batch_delete", "start_after", "continuation_token", "max_keys", "any_key"})

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str | None = None,
                 mark: int | None = None, *, clock: NodeClock | None = None) -> None:
        """clock learns the bucket's time from the listings (boto3's responses show their Date; obstore's
        do not)."""
        if mark is not None:
            raise ValueError("obstore cannot mark its connections: open a marked bucket through boto3")
        session = boto3.session.Session(region_name=region)
        self.boto3 = S3Bucket(bucket, endpoint_url, region, session=session, clock=clock)
        self._bucket = bucket
        meta = self.boto3.client.meta
        endpoint = str(meta.endpoint_url)
        options: dict[str, Any] = {"region": meta.region_name or "us-east-1"}
        if not urlsplit(endpoint).hostname or not str(urlsplit(endpoint).hostname).endswith(".amazonaws.com"):
            options["endpoint"] = endpoint  # an S3-compatible endpoint, addressed path-style as boto3 does
        https = endpoint.startswith("https:")
        client_options: Any = {**CLIENT_OPTIONS, "allow_http": not https}
        self.store = S3Store(
            bucket, **options,
            unsigned_payload=https,  # as botocore: over TLS the body is not hashed into the signature
            credential_provider=BotoCredentials(session.get_credentials()),  # type: ignore[arg-type]
            client_options=client_options,
            retry_config={"max_retries": 0},
        )
        self._endpoint = endpoint

    @property
    def name(self) -> str:
        return self._bucket

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def put(self, key: str, body: bytes) -> None:
        if not nameable(key):
            self.boto3.put(key, body)
            return
        try:
            obstore.put(self.store, key, body, use_multipart=False)
        except ValueError as error:
            if not unnameable(error):
                raise
            self.boto3.put(key, body)

    def list_objects(self, prefix: str = "", max_keys: int = LIST_LIMIT, start_after: str = "",
                     token: str = "") -> Listing:
        return self.boto3.list_objects(prefix, max_keys, start_after, token)

    def get(self, key: str, limit: int = MAX_OBJECT_BYTES) -> bytes | None:
        if not nameable(key):
            return self.boto3.get(key, limit)
        try:
            # A ranged read: no more than limit + 1 bytes cross the wire; object_store fails a
            # response cut short, and one that is not the range asked for.
            return bytes(obstore.get_range(self.store, key, start=0, length=limit + 1))
        except FileNotFoundError as error:
            if "NoSuchBucket" in str(error):
                raise
            return None
        except obstore.exceptions.GenericError as error:
            if http_status(error) == 416:
                return b""  # an empty object: no byte 0 to start the range at
            raise
        except ValueError as error:
            if not unnameable(error):
                raise
            return self.boto3.get(key, limit)

    def delete(self, keys: Sequence[str]) -> list[str]:
        if not all(map(nameable, keys)):
            return self.boto3.delete(keys)
        try:
            obstore.delete(self.store, list(keys))
        except (ValueError, TypeError) as error:
            if not unnameable(error):
                raise
            return self.boto3.delete(keys)
        except obstore.exceptions.BaseError as error:
            if http_status(error) is not None or transport_failure(error) or "credentials" in str(error):
                raise
            return list(keys)  # answered, but some keys were refused: which, obstore does not say
        return []

    def delete_one(self, key: str) -> None:
        # A DeleteObject of its own (obstore would send a DeleteObjects of one): only for keys a batch
        # was refused for, so boto3's cost here is rare.
        self.boto3.delete_one(key)

    def check_access(self, prefix: str) -> None:
        self.boto3.check_access(prefix)
        # obstore signs with the same credentials, but its own request proves it reaches the endpoint.
        self.get(f"{prefix}hoshino-access-check", limit=0)


def unnameable(error: ValueError | TypeError) -> bool:
    """object_store refused a key before sending anything (one nameable() missed)."""
    return "Could not parse path" in str(error) or "Expected string path" in str(error)


_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
_HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")


def http_status(error: BaseException) -> int | None:
    """The HTTP status the service answered with, or None when no answer came."""
    match = _STATUS.search(str(error))
    return int(match.group(1)) if match else None


def error_code(error: BaseException) -> str:
    """S3's error code (SlowDown, AccessDenied, ...) from obstore's message, or the HTTP status, or ''."""
    text = str(error)
    if match := _CODE.search(text):
        return match.group(1)
    status = http_status(error)
    return str(status) if status is not None else ""


def transport_failure(error: BaseException) -> str:
    """How a request that got no answer failed: Connect, Timeout, Interrupted, Body... ('' if it got one)."""
    match = _HTTP_KIND.search(str(error))
    if match:
        return match.group(1)
    return "Body" if "request or response body error" in str(error) else ""
