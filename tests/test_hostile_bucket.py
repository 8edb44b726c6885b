"""Regressions for a writer with access to the bucket, one per finding, against the real local S3 server."""

from __future__ import annotations

import time

import pytest
import ulid
from fault_proxy import Op
from loops import Side
from packets_factory import A, B, udp

from agent import wire
from agent.deleter import DELETE_ATTEMPTS
from agent.transport import Bucket

pytestmark = pytest.mark.engines
"""The end-to-end core: CI runs it on every S3 engine (Makefile)."""


@pytest.fixture
def pair(s3_server, bucket):
    a, b = Side(s3_server.endpoint_url, bucket, A).start(False), Side(s3_server.endpoint_url, bucket, B)
    yield a, b
    a.close()
    b.close()


def leftover_keys(s3_server, bucket):
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def key_at(seconds: float) -> str:
    return f"{B}/{ulid.ULID.from_timestamp(float(seconds))}"  # an int would be taken as milliseconds


def test_1_an_extension_header_chain_costs_one_header_check(s3_server, bucket, pair):
    """0x60 then zeros froze the receiving side for ~14 s at 2 MiB: now it is 40 bytes read and refused."""
    a, b = pair
    hostile = b"\x60" + bytes((2 << 20) - 1)
    b.bucket.put(b.egress.keys.make(B), hostile)
    a.send(udp(A, B, b"right behind it"))
    started = time.monotonic()
    b.receive()
    elapsed = time.monotonic() - started
    print(f"a 2 MiB hostile object and a good one handled in {elapsed * 1000:.0f} ms")
    assert b.delivered == [udp(A, B, b"right behind it")]
    assert b.stats.dropped == {"malformed": 1}
    assert elapsed < 2.0


def test_2_keys_a_batch_delete_refuses_never_deafen_a_node(s3_server, bucket, pair):
    """A key ending in a control character: the server refuses any batch delete that holds it (HTTP 500),
    and a page that ends with it cannot be the next page's StartAfter. 1,000 of them made a node deaf."""
    a, _ = pair
    b = Side(s3_server.endpoint_url, bucket, B, max_age=300)  # the pile takes longer to PUT than 10 s here
    client = s3_server.client()
    maker = wire.KeyMaker()
    for _ in range(1100):  # more than one listing page of them
        client.put_object(Bucket=bucket, Key=f"{maker.make(B)}\x01", Body=b"\x00")
    for _ in range(3):
        a.send(udp(A, B, b"still heard"))
        b.receive()
        while b.ingress.deleter.waiting:
            b.ingress.deleter.delete_once()
    assert b.delivered == [udp(A, B, b"still heard")] * 3
    assert b.stats.dropped["bad_key"] == 1100  # each counted once, however often it is listed
    assert b.stats.s3_errors[("delete", "error")] >= 1  # the batches were refused...
    assert leftover_keys(s3_server, bucket) == []  # ...and every key deleted alone


def test_2_a_key_that_cannot_be_deleted_at_all_is_given_up_counted_and_reported_once(s3_server, bucket, fault_proxy):
    reports: list[str] = []
    a = Side(s3_server.endpoint_url, bucket, A).start(False)
    b = Side(fault_proxy.endpoint_url, bucket, B)
    b.ingress.deleter._report = reports.append
    fault_proxy.error500(ops=[Op.DELETE_OBJECTS, Op.DELETE_OBJECT])  # nothing is ever deleted
    try:
        for n in range(3):
            a.send(udp(A, B, f"heard {n}".encode()))
            b.receive()
            for _ in range(2 * DELETE_ATTEMPTS):
                b.ingress.deleter.delete_once()
        assert [packet[-7:] for packet in b.delivered] == [b"heard 0", b"heard 1", b"heard 2"]
        assert b.stats.undeletable == 3
        assert len(reports) == 1 and "given up" in reports[0]
        b.receive()  # still listed: never handled again
        assert len(b.delivered) == 3 and b.stats.dropped == {}
    finally:
        a.close()
        b.close()


class Overwritten:
    """A real bucket where someone replaces an object between the listing and the GET."""

    def __init__(self, inner: Bucket, client, bucket: str) -> None:
        self.inner = inner
        self.client = client
        self.bucket = bucket
        self.read: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def list_objects(self, prefix: str = "", max_keys: int = 1000, start_after: str = "", token: str = ""):
        listing = self.inner.list_objects(prefix, max_keys, start_after, token)
        for item in listing:
            self.client.put_object(Bucket=self.bucket, Key=item.key, Body=bytes(20 << 20))
        return listing

    def get(self, key: str, limit: int = wire.MAX_OBJECT_BYTES) -> bytes | None:
        body = self.inner.get(key, limit)
        self.read.append(len(body or b""))
        return body


def test_3_no_get_reads_more_than_the_listing_announced(s3_server, bucket):
    """Listed small, overwritten with 20 MiB before the GET: read whole, RSS went 72 -> 795 MB."""
    wrappers: list[Overwritten] = []

    def wrap(inner: Bucket) -> Bucket:
        wrappers.append(Overwritten(inner, s3_server.client(), bucket))
        return wrappers[0]  # type: ignore[return-value]

    a = Side(s3_server.endpoint_url, bucket, A).start(False)
    b = Side(s3_server.endpoint_url, bucket, B, wrap=wrap)
    try:
        small = udp(A, B, b"small")
        a.send(small)
        b.receive()
        assert b.delivered == []
        assert b.stats.dropped == {"size_mismatch": 1}
        assert wrappers[0].read == [len(small) + 1]  # a ranged read: one byte past what was announced
    finally:
        a.close()
        b.close()


def test_4_a_bundle_of_too_many_packets_is_refused_after_reading_its_bound(s3_server, bucket, pair):
    """380,000 packets of 40 bytes took ~3 s to write into the kernel, stalling everything behind."""
    a, b = pair
    tiny = udp(A, B, b"")
    flood = wire.BUNDLE_MAGIC + (wire._LENGTH.pack(len(tiny)) + tiny) * 100_000
    b.bucket.put(b.egress.keys.make(B), flood)
    a.send(udp(A, B, b"after the flood"))
    started = time.monotonic()
    b.receive()
    print(f"a {len(flood) >> 20} MiB bundle of 100,000 packets refused in {(time.monotonic() - started) * 1000:.0f} ms")
    assert b.delivered == [udp(A, B, b"after the flood")]
    assert b.stats.dropped == {"too_many_packets": 1}


def test_5_old_future_and_repeated_keys_are_refused(s3_server, bucket, pair):
    """ULIDs of 2020 or 2080 were delivered; one object PUT again was delivered again."""
    a, b = pair
    datagram = udp(A, B, b"once")
    b.bucket.put(key_at(1_600_000_000), datagram)  # 2020
    b.bucket.put(key_at(3_500_000_000), datagram)  # 2080
    b.ingress.sweep()  # the 2020 one lies below the listing window: the sweep finds it
    b.receive()
    assert b.delivered == []
    assert b.stats.dropped == {"stale": 1, "future": 1}
    b.ingress.deleter.delete_once()
    assert leftover_keys(s3_server, bucket) == []

    a.send(datagram)
    (key,) = leftover_keys(s3_server, bucket)
    b.receive()
    b.ingress.deleter.delete_once()
    b.bucket.put(key, datagram)  # captured, and PUT again under the same key
    b.receive()
    assert b.delivered == [datagram]
    assert b.stats.dropped["replayed"] == 1
    b.ingress.deleter.delete_once()
    assert leftover_keys(s3_server, bucket) == []
