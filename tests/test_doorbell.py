"""The SQS doorbell on the local server's SQS: rings wake the receiver, idle costs a long poll, a missing
queue falls back to polling."""

from __future__ import annotations

import ipaddress
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loops import Side
from packets_factory import A, B, udp

from agent.lab import Lab, run_in, wait_until
from agent.lab import traffic as lab_traffic
from agent.metrics import Stats
from agent.netconf import inside
from agent.transport import Guard, open_doorbell
from agent.transport.base import Bell
from agent.transport.bell_format import decode_bells, encode_bells
from agent.transport.sqs import QUEUE_ATTRIBUTES, DoorbellError, SqsDoorbell, queue_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
import node_policy


def test_queue_names_follow_the_address_and_match_the_deployed_policy():
    for prefix in ("", "net1/", "team a/"):
        for address in (A, B, ipaddress.IPv6Address("fd00::1:2:3:4")):
            assert queue_name(prefix, address) == node_policy.queue_name(address, prefix)
    assert queue_name("", B) == "hoshino-fd5e-59b8-f71d-9a3e--b"
    with pytest.raises(DoorbellError, match="80 characters"):
        queue_name("x" * 60, B)


def test_a_polling_node_with_a_long_prefix_never_rings_what_cannot_have_a_queue():
    # A polling node needs no queue of its own; each destination whose queue name would be too long is
    # simply not rung (no node can wait on such a queue), told once, and no SQS request is made for it.
    told: list[str] = []

    def connect() -> object:
        raise AssertionError("no SQS client is needed")

    doorbell = SqsDoorbell(connect, Guard(Stats()), A, "p" * 60 + "/", report=told.append)
    for _ in range(3):
        assert not doorbell.ring(B, [Bell(f"{B}/01J0000000000000000000000A", 104)])
    assert doorbell.unringable == 1
    assert len(told) == 1 and told[0].startswith(f"not ringing {B}: --key-prefix") and "--wakeup poll" in told[0]
    with pytest.raises(DoorbellError, match="too long for a doorbell"):
        doorbell.open()


def test_bells_round_trip_and_strangers_are_refused():
    bells = [Bell(f"{B}/01J0000000000000000000000A", 104), Bell(f"{B}/01J0000000000000000000000B", 7)]
    assert decode_bells(encode_bells(bells)) == bells
    for text in ("", "[]", '{"v": 2, "bells": []}', '{"v": 1, "bells": [["k", "9"]]}', '{"v": 1, "bells": [[1, 2]]}'):
        with pytest.raises(ValueError):
            decode_bells(text)


class Node:
    """A Side with a doorbell of its own (or none), on a key prefix of the test's, so tests share no queues.

    Its queue is made beforehand, as deploy/terraform makes it, unless provisioned is False: then the
    node makes its own and listens by listing for a minute, until its senders know of it."""

    def __init__(self, s3_server, bucket: str, address: ipaddress.IPv6Address, prefix: str, bell: bool,
                 provisioned: bool = True) -> None:
        if bell and provisioned:
            s3_server.sqs_client().create_queue(QueueName=queue_name(prefix, address), Attributes=QUEUE_ATTRIBUTES)
        self.guard = Guard(Stats())
        self.doorbell = open_doorbell(s3_server.endpoint_url, "us-east-1", self.guard, address, prefix) \
            if bell else None
        self.side = Side(s3_server.endpoint_url, bucket, address, doorbell=self.doorbell, key_prefix=prefix,
                         guard=self.guard)

    def close(self) -> None:
        if self.doorbell is not None:
            self.doorbell.close()
        self.side.close()


def sends(node: Node) -> int:
    """SendMessage requests the node has made: its bells, and the one to its own queue as it opened it."""
    return node.side.stats.requests.get(("sqs", "send"), 0)


@pytest.fixture
def prefix() -> str:
    return f"bell{secrets.token_hex(3)}/"


@pytest.fixture
def rung(s3_server, bucket, prefix) -> Iterator[tuple[Node, Node]]:
    """A sends, B waits on its doorbell, its first listing done: from then on only bells wake it."""
    a = Node(s3_server, bucket, A, prefix, bell=True)
    b = Node(s3_server, bucket, B, prefix, bell=True)
    a.side.start(receive=False)
    b.side.start()
    try:
        assert wait_until(lambda: b.side.stats.s3_ops["list"] >= 1, 10)  # its first listing, then its queue
        yield a, b
    finally:
        a.close()
        b.close()


def test_a_ring_wakes_the_receiver_which_fetches_without_listing(rung):
    a, b = rung
    time.sleep(0.5)
    lists_before = b.side.stats.s3_ops["list"]
    sent = [udp(A, B, f"rung {n}".encode()) for n in range(5)]
    for data in sent:
        started = time.monotonic()
        a.side.send(data)
        assert wait_until(lambda data=data: data in b.side.delivered, 10)
        print(f"rung and delivered in {(time.monotonic() - started) * 1000:.0f} ms")
    assert b.side.delivered == sent
    assert b.side.stats.s3_ops["list"] == lists_before  # not one LIST: the bells said where to look
    assert a.side.stats.requests[("sqs", "send")] >= 5


def test_a_heartbeat_held_slower_by_hand_paces_the_doorbell_too(rung):
    """The dashboard's `s` key: rung objects wait in the bucket for a held beat, for the inspector to see."""
    a, b = rung
    while b.side.heartbeat.interval < 1.0:
        b.side.heartbeat.slower()
    sent = udp(A, B, b"held")
    opened = sends(a)
    started = time.monotonic()
    a.side.send(sent)
    assert wait_until(lambda: sends(a) > opened, 10)
    time.sleep(0.5)
    assert b.side.delivered == []  # rung, and still waiting in the bucket
    assert wait_until(lambda: b.side.delivered == [sent], 10)
    waited = time.monotonic() - started
    print(f"held {b.side.heartbeat.interval:.1f} s: delivered after {waited:.2f} s")
    assert waited >= b.side.heartbeat.interval * 0.9


def test_a_destination_without_a_queue_is_not_rung_and_still_receives_by_polling(s3_server, bucket, prefix):
    a = Node(s3_server, bucket, A, prefix, bell=True)
    b = Node(s3_server, bucket, B, prefix, bell=False)  # polls: it has no queue
    a.side.start(receive=False)
    b.side.start()
    try:
        for n in range(15):  # for 3 s
            a.side.send(udp(A, B, f"polled {n}".encode()))
            time.sleep(0.2)
        assert wait_until(lambda: len(b.side.delivered) == 15, 10)
        asked = a.side.stats.requests[("sqs", "get_url")] - 1  # its own queue's URL first
        print(f"asked for the missing queue {asked} times in 3 s")
        assert 1 <= asked <= 3  # after 0, 1 and 3 s at most: each time twice as long after the last
        assert sends(a) == 1  # the bell to its own queue as it opened it (agent.transport.sqs), and none to b
    finally:
        a.close()
        b.close()


def test_a_destination_whose_queue_appears_later_is_rung_within_seconds(s3_server, bucket, prefix):
    """A node that starts just after its peer first sent to it: the peer asks again soon, not in a minute."""
    a = Node(s3_server, bucket, A, prefix, bell=True)
    a.side.start(receive=False)
    b = None
    try:
        a.side.send(udp(A, B, b"before its queue"))
        assert wait_until(lambda: a.side.stats.requests.get(("sqs", "get_url"), 0) == 2, 10)  # none yet
        b = Node(s3_server, bucket, B, prefix, bell=True, provisioned=False)
        assert b.doorbell is not None and b.doorbell.unknown_for > 0  # it lists while a learns of its queue
        b.side.start()
        opened = sends(a)  # the bell to its own queue as it opened it
        started = time.monotonic()
        for n in range(20):
            a.side.send(udp(A, B, f"after {n}".encode()))
            if wait_until(lambda: sends(a) > opened, 0.5):
                break
        print(f"rung {time.monotonic() - started:.1f} s after its queue was made")
        assert sends(a) > opened
        assert wait_until(lambda: len(b.side.delivered) == n + 2, 10), (n, b.side.delivered, b.side.stats.dropped)
    finally:
        a.close()
        if b is not None:
            b.close()


def test_a_receiver_that_was_away_catches_up_by_listing(s3_server, bucket, prefix):
    a = Node(s3_server, bucket, A, prefix, bell=True)
    b = Node(s3_server, bucket, B, prefix, bell=True)
    a.side.start(receive=False)
    try:
        sent = [udp(A, B, f"while away {n}".encode()) for n in range(3)]
        a.side.send(*sent)
        b.doorbell.client.purge_queue(QueueUrl=b.doorbell.url)  # the bells are lost
        b.side.start()
        assert wait_until(lambda: len(b.side.delivered) == 3, 10)  # its first listing found them
        assert b.side.delivered == sent
    finally:
        a.close()
        b.close()


@pytest.mark.root
def test_sqs_nodes_ping_in_namespaces_and_idle_without_listing(lab: Lab):
    local = lab.spawn_agent("local")  # the lab's nodes wake on the doorbell
    lab.start_peer()
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "10", "-i", "0.2", "-W", "5",
                    str(lab.peer_address), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + lab.agent_log(local)
    assert "10 packets transmitted, 10 received" in result.stdout
    print(result.stdout.strip().splitlines()[-1])
    with inside(lab.namespaces["local"].name):
        before = lab_traffic.fetch_metrics(lab.local_address)
    time.sleep(5)
    with inside(lab.namespaces["local"].name):
        after = lab_traffic.fetch_metrics(lab.local_address)
    assert counter(after, 'hoshino_s3_read_operations_total{operation="list"}') == \
        counter(before, 'hoshino_s3_read_operations_total{operation="list"}')  # idle: no LIST at all
    assert counter(after, 'hoshino_sqs_requests_total{operation="receive"}') >= 1


@pytest.mark.root
def test_an_sqs_node_and_a_polling_node_still_talk(lab: Lab):
    lab.spawn_agent("local", "--wakeup", "sqs")
    lab.start_peer("--wakeup", "poll")  # polls: its replies come unrung, so the local node polls while they talk
    for source, target in (("local", "peer"), ("peer", "local")):
        result = run_in(lab.namespaces[source].name, "ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "5",
                        str(lab.address(target)), timeout=60)
        assert "5 packets transmitted, 5 received" in result.stdout, result.stdout + result.stderr


def counter(page: str, name: str) -> float:
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
