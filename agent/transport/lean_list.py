"""ListObjectsV2 without boto3's request pipeline: one signed GET, its XML read with the standard library.

A polling node's most frequent request is the listing of its inbox, and through boto3 it costs ~3.6 ms of
CPU here, four times obstore's PUT or GET (docs/performance.md, "Where a ping's time goes"): building the
request through botocore's endpoint rules and event hooks, and parsing the answer into typed dicts. This
sends the same request with botocore's own parts, called directly: its SigV4 signer for S3 (the
credentials of boto3's chain, refreshed as they are there) and its HTTP session (urllib3, the client's
timeouts; its failures are botocore's, which the guard classifies). Keys come URL-encoded
(`encoding-type=url`, as boto3 asks too) and are decoded as boto3 decodes them, so a key is listed exactly
as it is, whatever it holds; an error answer becomes botocore's ClientError with S3's code.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit
from xml.etree import ElementTree

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import botocore.httpsession

from agent.transport.base import Listing, ObjectInfo

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
DateSeen = Callable[[str | None, float, float], None]
"""(the answer's Date header, when the request left, when its answer came) on the monotonic clock."""


def bucket_url(endpoint: str, bucket: str) -> str:
    """Where the bucket's listing is asked for, addressed as obstore and boto3 address it: path-style on an
    S3-compatible endpoint (or a bucket name with dots, which a virtual host's TLS name cannot hold),
    virtual-hosted on AWS."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if host.endswith(".amazonaws.com") and "." not in bucket and not _is_address(host):
        return f"{parts.scheme}://{bucket}.{parts.netloc}/"
    return f"{endpoint.rstrip('/')}/{quote(bucket, safe='')}"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class LeanLister:
    """Lists a bucket's keys, one page per call, as S3Bucket.list_objects does through boto3."""

    def __init__(self, bucket: str, s3_client: Any, credentials: botocore.credentials.Credentials | None,
                 date_seen: DateSeen | None = None) -> None:
        """s3_client: the boto3 client whose endpoint, region and timeouts to use; credentials: its session's
        (boto3's chain: refreshed as they expire), None to send unsigned."""
        meta = s3_client.meta
        self.url = bucket_url(str(meta.endpoint_url), bucket)
        self.region = meta.region_name or "us-east-1"
        self.credentials = credentials
        config = meta.config
        self.http = botocore.httpsession.URLLib3Session(
            # (connect, read), as botocore's own endpoints pass it; its stubs know only one number
            timeout=(config.connect_timeout, config.read_timeout),  # type: ignore[arg-type]
            max_pool_connections=config.max_pool_connections,
            proxies=config.proxies, socket_options=None)
        self.date_seen = date_seen

    def list_objects(self, prefix: str, max_keys: int, start_after: str = "", token: str = "") -> Listing:
        query = {"list-type": "2", "encoding-type": "url", "max-keys": str(max_keys), "prefix": prefix}
        if token:
            query["continuation-token"] = token
        elif start_after:
            query["start-after"] = start_after
        # Encoded as SigV4 wants it (all but letters, digits and -_.~), since the signer signs the query as it is.
        url = f"{self.url}?{urlencode(sorted(query.items()), quote_via=quote)}"
        request = botocore.awsrequest.AWSRequest("GET", url)
        if self.credentials is not None:
            frozen = self.credentials.get_frozen_credentials()
            botocore.auth.S3SigV4Auth(frozen, "s3", self.region).add_auth(request)
        started = time.monotonic()
        response = self.http.send(request.prepare())
        if self.date_seen is not None:
            self.date_seen(response.headers.get("Date"), started, time.monotonic())
        if response.status_code >= 300:
            raise _client_error(response.status_code, response.content, dict(response.headers))
        return parse_listing(response.content)


def parse_listing(content: bytes) -> Listing:
    """A ListObjectsV2 answer (keys URL-encoded) as a Listing."""
    root = ElementTree.fromstring(content)
    encoded = (root.findtext(f"{NS}EncodingType") or "").lower() == "url"
    objects = []
    for item in root.iterfind(f"{NS}Contents"):
        key = item.findtext(f"{NS}Key") or ""
        objects.append(ObjectInfo(unquote_plus(key) if encoded else key, int(item.findtext(f"{NS}Size") or 0),
                                  datetime.fromisoformat(item.findtext(f"{NS}LastModified") or "")))
    return Listing(tuple(objects), (root.findtext(f"{NS}IsTruncated") or "").lower() == "true",
                   root.findtext(f"{NS}NextContinuationToken") or "")


def _client_error(status: int, content: bytes, headers: dict[str, str]) -> botocore.exceptions.ClientError:
    """S3's error answer as botocore raises it: its code (or the HTTP status, when the body names none)."""
    code, message = str(status), ""
    try:
        error = ElementTree.fromstring(content)
        code = error.findtext("Code") or code
        message = error.findtext("Message") or ""
    except ElementTree.ParseError:
        pass
    answer: Any = {"Error": {"Code": code, "Message": message},
                   "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers}}
    return botocore.exceptions.ClientError(answer, "ListObjectsV2")
