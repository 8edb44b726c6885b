"""The two loops against a real S3 API over HTTP on 127.0.0.1 (no root needed: no device here)."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest
from packets_factory import A, B, echo_request, tcp_syn, udp

from agent import metrics, packets, wire
from agent.config import DEFAULT_NETWORK
from agent.egress import Egress
from agent.events import EventQueue, PacketSeen
from agent.heartbeat import Heartbeat
from agent.ingress import FETCH_ATTEMPTS, Ingress
from agent.lab import S3Server, wait_until
from agent.store import Store, StoreError

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
MTU = 53049


class Side:
    """One node's loops without a device: egress takes packets by hand, ingress writes to a list."""

    def __init__(self, endpoint: str, bucket: str, address: ipaddress.IPv6Address) -> None:
        self.stats = metrics.Stats()
        self.events = EventQueue()
        self.store = Store(bucket, endpoint, stats=self.stats)
        self.heartbeat = Heartbeat(0.001, 0.05)
        self.delivered: list[bytes] = []
        self.egress = Egress(self.store, self.stats, self.heartbeat, address, NETWORK, MTU,
                             publish=self.events.publish)
        self.ingress = Ingress(self.delivered.append, self.store, self.stats, self.heartbeat, address, MTU,
                               publish=self.events.publish)

    def send(self, *datas: bytes) -> None:
        self.egress.send([(packets.parse(data), data) for data in datas])


@pytest.fixture
def sides(s3_server, bucket):
    return Side(s3_server.endpoint_url, bucket, A), Side(s3_server.endpoint_url, bucket, B)


def keys(s3_server, bucket, prefix=""):
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_egress_puts_what_ingress_gets_and_deletes(s3_server, bucket, sides):
    a, b = sides
    sent = [echo_request(A, B), tcp_syn(A, B), udp(A, B)]
    a.send(*sent)
    stored = keys(s3_server, bucket)
    assert len(stored) == 1 and stored[0].startswith(f"{B}/")  # one bundle for one destination
    assert b.ingress.poll() is True
    assert b.delivered == sent
    assert b.ingress.poll() is False  # handled, its delete still queued: not delivered twice
    assert b.delivered == sent
    assert b.ingress.delete_handled() is True
    assert keys(s3_server, bucket) == []
    assert (a.stats.packets_out, a.stats.bytes_out) == (3, sum(map(len, sent)))
    assert (b.stats.packets_in, b.stats.bytes_in) == (3, sum(map(len, sent)))
    assert b.stats.s3_ops["list"] == 2 and b.stats.s3_ops["get"] == 1 and b.stats.s3_ops["delete"] == 1
    assert a.stats.s3_ops["put"] == 1
    assert b.ingress.poll() is False


def test_single_packet_object_is_raw_ipv6(s3_server, bucket, sides):
    a, _ = sides
    a.send(echo_request(A, B))
    (key,) = keys(s3_server, bucket)
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == echo_request(A, B)


def test_objects_arrive_in_send_order(s3_server, bucket, sides):
    a, b = sides
    sent = [udp(A, B, f"datagram {n}".encode()) for n in range(40)]
    for data in sent:
        a.send(data)
    while b.ingress.poll():
        pass
    assert b.delivered == sent


def test_late_put_is_still_delivered(s3_server, bucket, sides):
    a, b = sides
    early_key = a.egress.keys.make(B)  # made first, PUT last: as if its PUT were slow
    a.send(udp(A, B, b"second"))
    b.ingress.poll()
    assert b.delivered == [udp(A, B, b"second")]
    a.store.put(early_key, udp(A, B, b"first, but late"))
    b.ingress.poll()
    assert b.delivered[-1] == udp(A, B, b"first, but late")


def test_bad_objects_are_dropped_counted_and_deleted(s3_server, bucket, sides):
    a, b = sides
    maker = wire.KeyMaker()
    good = udp(A, B, b"good")
    a.store.put(maker.make(B), b"\x00 not a packet")
    a.store.put(maker.make(B), wire.BUNDLE_MAGIC + b"\xff\xff\xff\xff")
    a.store.put(maker.make(B), echo_request(A, B)[:-4])  # truncated
    a.store.put(maker.make(B), udp(B, A))  # addressed to someone else
    a.store.put(f"{B}/not-a-ulid", good)
    a.store.put(maker.make(B), wire.encode([udp(A, B, b"x" * 2000), good]))  # one bad in a bundle
    big_mtu_side = b.ingress.mtu
    b.ingress.mtu = 1280
    assert b.ingress.poll() is True
    b.ingress.mtu = big_mtu_side
    assert b.delivered == [good]
    assert b.stats.dropped == {
        "bad_object": 2, "malformed": 1, "wrong_destination": 1, "bad_key": 1, "too_long": 1
    }
    b.ingress.delete_handled()
    assert keys(s3_server, bucket) == []
    dropped = [e for e in b.events.drain() if isinstance(e, PacketSeen) and e.verdict == "dropped"]
    assert {e.reason for e in dropped} == set(b.stats.dropped)


def test_object_that_cannot_be_read_is_dropped_after_some_polls(s3_server, bucket, sides):
    a, b = sides
    a.send(udp(A, B, b"unreadable"))
    (key,) = keys(s3_server, bucket)
    real_get = b.store.get

    def get(wanted: str, attempts: int = 3) -> bytes | None:
        if wanted == key:
            raise StoreError("access denied by S3 (AccessDenied)", "denied")
        return real_get(wanted, attempts)

    b.store.get = get  # S3 lists this object but refuses to hand it over
    for _ in range(FETCH_ATTEMPTS - 1):
        assert b.ingress.poll() is True
        assert b.stats.dropped == {}
    b.ingress.poll()  # the last failure
    assert b.stats.dropped == {"unreadable_object": 1}
    b.ingress.delete_handled()
    assert keys(s3_server, bucket) == []


def test_missing_bucket_and_unreachable_endpoint_are_named(s3_server):
    with pytest.raises(StoreError, match="bucket does not exist") as missing:
        Store("no-such-bucket", s3_server.endpoint_url).check_bucket()
    assert missing.value.kind == "no_bucket"
    from agent.lab import free_port

    with pytest.raises(StoreError, match="cannot reach S3") as down:
        Store("b", f"http://127.0.0.1:{free_port()}").check_bucket()
    assert down.value.kind == "unreachable"


def test_loops_survive_the_server_stopping_and_coming_back():
    server = S3Server().start()
    try:
        server.create_bucket("restart")
        a, b = Side(server.endpoint_url, "restart", A), Side(server.endpoint_url, "restart", B)
        stop = threading.Event()
        loop = threading.Thread(target=b.ingress.run, args=(stop,))
        loop.start()
        a.send(udp(A, B, b"before"))
        assert wait_until(lambda: b.delivered == [udp(A, B, b"before")], 10)
        server.process.terminate()
        server.process.wait()
        assert wait_until(lambda: sum(b.stats.s3_errors.values()) >= 3, 10)
        assert not b.store.healthy
        a.send(udp(A, B, b"lost while down"))
        assert a.stats.dropped["s3_error"] == 1
        time.sleep(1.0)
        assert loop.is_alive()
        server.restart()
        server.create_bucket("restart")
        a.send(udp(A, B, b"after"))
        assert wait_until(lambda: b.delivered[-1:] == [udp(A, B, b"after")], 15)
        assert b.store.healthy
        stop.set()
        loop.join(timeout=10)
        assert not loop.is_alive()
    finally:
        server.stop()


def test_metrics_follow_prometheus_conventions(sides):
    a, _ = sides
    a.send(echo_request(A, B))
    a.stats.ignore("multicast")
    registry = metrics.node_registry(metrics.NodeCollector(a.stats, Heartbeat(0.001, 0.5), {"address": str(A)}))
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    assert "hoshino_packets_egressed_total 1.0" in text
    assert 'hoshino_ignored_packets_total{reason="multicast"} 1.0' in text
    assert 'hoshino_s3_write_operations_total{operation="put"} 1.0' in text
    assert "hoshino_heartbeat_interval_seconds 0.5" in text
    assert "hoshino_heartbeat_missed_beats_total 0.0" in text
    assert "process_cpu_seconds_total" in text
