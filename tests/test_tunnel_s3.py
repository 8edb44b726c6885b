"""The send and receive paths against a real S3 API over HTTP on 127.0.0.1 (no root needed: no device)."""

from __future__ import annotations

import dataclasses
import ipaddress
import time

import pytest
from loops import Side
from packets_factory import A, B, echo_request, tcp_syn, udp
from prometheus_client import generate_latest

from agent import metrics, wire
from agent.events import PacketSeen
from agent.fetching import HOLD_LIMIT
from agent.heartbeat import Heartbeat
from agent.lab import S3Server, free_port, wait_until
from agent.ledger import FETCH_ATTEMPTS
from agent.transport import Bucket, StoreError, open_bucket


@pytest.fixture
def sides(s3_server, bucket):
    a, b = Side(s3_server.endpoint_url, bucket, A).start(False), Side(s3_server.endpoint_url, bucket, B).start(False)
    yield a, b
    a.close()
    b.close()


def keys(s3_server, bucket, prefix=""):
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def put_raw(s3_server, bucket, key, body):
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=body)


def test_egress_puts_what_ingress_gets_and_deletes(s3_server, bucket, sides):
    a, b = sides
    sent = [echo_request(A, B), tcp_syn(A, B), udp(A, B)]
    for data in sent:
        a.egress.handle(data)
    assert a.egress.wait_idle()
    assert all(key.startswith(f"{B}/") for key in keys(s3_server, bucket))
    assert b.receive() == 1
    assert b.delivered == sent
    assert b.receive() == 0  # handled: not delivered twice, whether or not its delete went through yet
    assert b.ingress.deleter.delete_once() is True
    assert keys(s3_server, bucket) == []
    assert (a.stats.packets_out, a.stats.bytes_out) == (3, sum(map(len, sent)))
    assert a.stats.packets_read == 3  # read = sent + ignored + dropped, exactly
    assert (b.stats.packets_in, b.stats.bytes_in) == (3, sum(map(len, sent)))
    assert b.stats.s3_ops["delete"] == 1 and b.stats.s3_ops["get"] == len(set(keys_put(a)))


def keys_put(side: Side) -> list[str]:
    return [event.key for event in side.events.drain() if isinstance(event, PacketSeen) and event.verdict == "sent"]


def test_a_lone_packet_leaves_at_once_and_is_stored_raw(s3_server, bucket, sides):
    a, _ = sides
    started = time.monotonic()
    a.send(echo_request(A, B))
    print(f"one packet PUT in {(time.monotonic() - started) * 1000:.1f} ms")
    (key,) = keys(s3_server, bucket)
    assert s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read() == echo_request(A, B)
    assert a.stats.s3_ops["put"] == 1


def test_a_dense_flow_gathers_into_few_large_objects_within_the_bounds(s3_server, bucket):
    a = Side(s3_server.endpoint_url, bucket, A, bundle_bytes=64 << 10).start(False)
    try:
        sent = [udp(A, B, bytes([n % 256]) * 1200) for n in range(600)]  # ~740 kB
        a.send(*sent)
    finally:
        a.close()
    bodies = [s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys(s3_server, bucket)]
    assert [packet for body in bodies for packet in wire.decode(body).packets] == sent  # in send order
    assert all(len(body) <= (64 << 10) + 4 + 4 * wire.MAX_BUNDLE_PACKETS for body in bodies)
    assert len(bodies) < len(sent) / 10  # gathered, not one PUT per packet
    print(f"600 packets in {len(bodies)} objects")


def test_objects_arrive_in_send_order(s3_server, bucket, sides):
    a, b = sides
    # forty GETs at once queue in one local server: on a busy machine one may outlast the measured hold, which
    # then lets the next go first, as it should; order is what is tested here, the hold's size elsewhere
    b.ingress.fetches.hold = lambda: HOLD_LIMIT
    sent = [udp(A, B, f"datagram {n}".encode()) for n in range(40)]
    for data in sent:
        a.send(data)
    while b.receive():
        pass
    assert b.delivered == sent


def test_late_put_is_still_delivered(s3_server, bucket, sides):
    a, b = sides
    early_key = a.egress.keys.make(B)  # made first, PUT last: as if its PUT were slow
    a.send(udp(A, B, b"second"))
    b.receive()
    assert b.delivered == [udp(A, B, b"second")]
    a.bucket.put(early_key, udp(A, B, b"first, but late"))
    b.receive()
    assert b.delivered[-1] == udp(A, B, b"first, but late")


class SlowGets:
    """A real bucket whose GETs of chosen keys take a while (a slow object, as S3 has them)."""

    def __init__(self, inner: Bucket, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.slow: set[str] = set()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def get(self, key: str, limit: int = wire.MAX_OBJECT_BYTES) -> bytes | None:
        if key in self.slow:
            time.sleep(self.seconds)
        return self.inner.get(key, limit)


def test_pipelined_delivery_keeps_key_order_and_a_slow_object_holds_the_rest_only_briefly(s3_server, bucket):
    slow_gets: list[SlowGets] = []

    def wrap(inner: Bucket) -> Bucket:
        slow_gets.append(SlowGets(inner, 0.3))
        return slow_gets[0]  # type: ignore[return-value]

    a = Side(s3_server.endpoint_url, bucket, A).start(False)
    b = Side(s3_server.endpoint_url, bucket, B, wrap=wrap)
    try:
        sent = [udp(A, B, f"in order {n}".encode()) for n in range(8)]
        for data in sent:
            a.send(data)
        listed = keys(s3_server, bucket)
        slow_gets[0].slow = {listed[0], listed[3]}  # slower than the rest, quicker than the hold
        measured = b.ingress.fetches.hold
        b.ingress.fetches.hold = lambda: HOLD_LIMIT  # not yet what a 0.3 s GET among quick ones measures
        b.receive()
        assert b.delivered == sent  # fetched in parallel, delivered in key order
        b.ingress.fetches.hold = measured
        assert measured() <= HOLD_LIMIT
        slow_gets[0].seconds = HOLD_LIMIT * 4  # now slower than any hold
        more = [udp(A, B, f"behind a slow one {n}".encode()) for n in range(3)]
        for data in more:
            a.send(data)
        slow_gets[0].slow = {keys(s3_server, bucket, f"{B}/")[-3]}
        started = time.monotonic()
        b.ingress.poll()
        assert wait_until(lambda: b.ingress.deliver_ready(0.05) >= 0 and len(b.delivered) >= 10, 5)
        held = time.monotonic() - started
        assert b.delivered[8:10] == more[1:]  # the two behind the slow one went first
        assert held < HOLD_LIMIT * 3
        b.ingress.drain()
        assert b.delivered[-1] == more[0]  # and the slow one still arrived
    finally:
        a.close()
        b.close()


def test_bad_objects_are_dropped_counted_and_deleted(s3_server, bucket, sides):
    a, b = sides
    maker = wire.KeyMaker()
    good = udp(A, B, b"good")
    a.bucket.put(maker.make(B), b"\x00 not a packet")
    a.bucket.put(maker.make(B), wire.BUNDLE_MAGIC + b"\xff\xff\xff\xff")
    a.bucket.put(maker.make(B), echo_request(A, B)[:-4])  # truncated
    a.bucket.put(maker.make(B), udp(B, A))  # addressed to someone else
    a.bucket.put(maker.make(B), udp(ipaddress.IPv6Address("2001:db8::1"), B))  # from outside the network
    a.bucket.put(f"{B}/not-a-ulid", good)
    a.bucket.put(maker.make(B), wire.encode([udp(A, B, b"x" * 60000), good]))  # one too long in a bundle
    b.ingress.settings = dataclasses.replace(b.ingress.settings, mtu=1280)
    b.receive()
    assert b.delivered == [good]
    assert b.stats.dropped == {
        "bad_object": 2, "malformed": 1, "not_routed_here": 1, "foreign_source": 1, "bad_key": 1, "too_long": 1,
    }
    b.ingress.deleter.delete_once()
    assert keys(s3_server, bucket) == []
    dropped = [e for e in b.events.drain() if isinstance(e, PacketSeen) and e.verdict == "dropped"]
    assert {e.reason for e in dropped} == set(b.stats.dropped)


def test_object_that_cannot_be_read_is_dropped_after_some_polls(s3_server, bucket, sides):
    a, b = sides
    a.send(udp(A, B, b"unreadable"))
    (key,) = keys(s3_server, bucket)
    real_get = b.bucket.inner.get

    def get(wanted: str, limit: int = wire.MAX_OBJECT_BYTES) -> bytes | None:
        if wanted == key:
            raise StoreError("access denied (AccessDenied)", "denied")
        return real_get(wanted, limit)

    b.bucket.inner.get = get  # type: ignore[method-assign]  # S3 lists this object but refuses to hand it over
    for _ in range(FETCH_ATTEMPTS - 1):
        assert b.receive() == 1
        assert b.stats.dropped == {}
    b.receive()  # the last failure
    assert b.stats.dropped == {"unreadable_object": 1}
    b.ingress.deleter.delete_once()
    assert keys(s3_server, bucket) == []


def test_missing_bucket_and_unreachable_endpoint_are_named(s3_server):
    with pytest.raises(StoreError, match="bucket does not exist") as missing:
        open_bucket("no-such-bucket", s3_server.endpoint_url).check_access("")
    assert missing.value.kind == "no_bucket"
    with pytest.raises(StoreError, match="cannot reach") as down:
        open_bucket("b", f"http://127.0.0.1:{free_port()}").check_access("")
    assert down.value.kind == "unreachable"


def test_loops_survive_the_server_stopping_and_coming_back():
    server = S3Server().start()
    try:
        server.create_bucket("restart")
        a = Side(server.endpoint_url, "restart", A).start(False)
        b = Side(server.endpoint_url, "restart", B).start()
        try:
            a.send(udp(A, B, b"before"))
            assert wait_until(lambda: b.delivered == [udp(A, B, b"before")], 10)
            server.process.terminate()
            server.process.wait()
            # Wait for the state, never race it: the guard turns unhealthy once requests fail for good.
            assert wait_until(lambda: not b.guard.healthy, 20)
            a.send(udp(A, B, b"lost while down"))
            assert a.stats.dropped["s3_error"] == 1
            assert a.stats.packets_read == a.stats.packets_out + sum(a.stats.dropped.values())
            server.restart()
            server.create_bucket("restart")
            back = time.monotonic()
            a.send(udp(A, B, b"after"))
            assert wait_until(lambda: b.delivered[-1:] == [udp(A, B, b"after")], 15)
            print(f"delivered {time.monotonic() - back:.2f} s after the server came back")
            assert wait_until(lambda: b.guard.healthy, 10)
        finally:
            a.close()
            b.close()
    finally:
        server.stop()


def test_metrics_follow_prometheus_conventions(sides):
    a, _ = sides
    a.send(echo_request(A, B))
    a.stats.ignore("multicast")
    a.stats.request("sqs", "receive", 0.01)
    registry = metrics.node_registry(metrics.NodeCollector(a.stats, Heartbeat(0.001, 0.5), {"address": str(A)}))
    text = generate_latest(registry).decode()
    assert "hoshino_packets_egressed_total 1.0" in text
    assert "hoshino_packets_read_total 1.0" in text
    assert 'hoshino_ignored_packets_total{reason="multicast"} 1.0' in text
    assert 'hoshino_s3_write_operations_total{operation="put"} 1.0' in text
    assert 'hoshino_sqs_requests_total{operation="receive"} 1.0' in text
    assert "hoshino_heartbeat_interval_seconds 0.5" in text
    assert "hoshino_heartbeat_missed_beats_total 0.0" in text
    assert "process_cpu_seconds_total" in text


def test_where_an_object_s_time_goes_is_measured_on_both_sides_and_exported(sides):
    a, b = sides
    before = time.time()
    a.send(echo_request(A, B))
    assert b.receive() == 1
    took = time.time() - before
    for side, stages in ((a, ("queued",)), (b, ("found", "fetched", "held"))):
        for stage in stages:
            seconds = side.stats.latency_quantile(stage, 0.5, "stage")
            # found compares the sender's clock with the receiver's (each the bucket's time as that node knows it)
            slack = 1.0 if stage == "found" else 0.0
            assert seconds is not None and -slack <= seconds <= took + slack, (stage, seconds)
    registry = metrics.node_registry(metrics.NodeCollector(b.stats, Heartbeat(0.001, 0.5), {"address": str(B)}))
    text = generate_latest(registry).decode()
    found = b.stats.latency_quantile("found", 0.5, "stage")
    assert f'hoshino_recent_seconds{{operation="found",quantile="0.5",service="stage"}} {found}' in text
    assert 'hoshino_recent_seconds{operation="get",quantile="0.99",service="s3"}' in text


@pytest.mark.engines
def test_a_backlog_of_more_than_a_page_never_hides_new_packets(s3_server, bucket, sides):
    a, _ = sides
    b = Side(s3_server.endpoint_url, bucket, B, max_age=300)  # the pile takes a while to PUT here
    maker = wire.KeyMaker()
    client = s3_server.client()
    for _ in range(1200):  # more than one page of leftovers
        client.put_object(Bucket=bucket, Key=maker.make(B), Body=b"\x00junk")
    a.send(udp(A, B, b"after the pile"))
    while b.receive():
        pass
    assert b.delivered == [udp(A, B, b"after the pile")]
    assert b.stats.dropped["bad_object"] == 1200
