"""A failing S3, behind the fault-injecting proxy: every fault survived, traffic resumes promptly,
throttling lowers the request rate, and the accounting adds up exactly."""

from __future__ import annotations

import time

import pytest
from fault_proxy import Kind, Op
from loops import Side
from packets_factory import A, B, udp

from agent.events import PacketSeen
from agent.lab import Lab, run_in, wait_until
from agent.lab import traffic as lab_traffic
from agent.netconf import inside

SLOWEST = 0.05
"""The test sides' slowest poll (loops.Side)."""


def sender_accounts_for_every_packet(side: Side) -> None:
    """Each packet read from the device was sent, dropped or ignored, exactly once."""
    stats = side.stats
    assert stats.packets_read == stats.packets_out + sum(stats.dropped.values()) + sum(stats.ignored.values())


def receiver_delivered_each_at_most_once(side: Side, sent: list[bytes]) -> None:
    assert len(side.delivered) == len(set(side.delivered)), "a packet was delivered twice"
    assert set(side.delivered) <= set(sent)


@pytest.fixture
def behind_proxy(s3_server, bucket, fault_proxy):
    """A sends straight to S3; B, the receiver, and A's PUTs both go through the proxy."""
    a = Side(fault_proxy.endpoint_url, bucket, A).start(receive=False)
    b = Side(fault_proxy.endpoint_url, bucket, B).start()
    yield a, b, fault_proxy
    a.close()
    b.close()


@pytest.mark.parametrize("kind", [Kind.SLOWDOWN, Kind.ERROR500, Kind.RESET, Kind.STALL, Kind.TRUNCATE])
def test_every_fault_is_survived_and_the_accounting_holds(behind_proxy, kind):
    a, b, proxy = behind_proxy
    options = {"seconds": 0.5} if kind is Kind.STALL else {}
    proxy.inject(kind, probability=0.3, **options)
    sent = [udp(A, B, f"{kind} {n}".encode()) for n in range(30)]
    for data in sent:
        a.egress.handle(data)
        time.sleep(0.02)
    assert a.egress.wait_idle(60)
    faulted = proxy.count(fault=kind)
    proxy.clear()
    late = udp(A, B, f"{kind} after".encode())
    a.send(late)
    assert wait_until(lambda: late in b.delivered, 20), f"nothing delivered after {kind} cleared"
    assert wait_until(lambda: b.ingress.in_flight == 0, 20)  # a stalled GET may still be on its way
    sender_accounts_for_every_packet(a)
    receiver_delivered_each_at_most_once(b, [*sent, late])
    lost = len(sent) - len([data for data in b.delivered if data in sent])
    print(f"{kind}: {faulted} requests faulted; {lost} of {len(sent)} packets lost, "
          f"{a.stats.dropped.get('s3_error', 0)} counted by the sender as s3_error; "
          f"the receiver dropped {dict(b.stats.dropped)}")
    assert faulted > 0
    assert lost <= a.stats.dropped.get("s3_error", 0) + sum(b.stats.dropped.values())  # every loss is counted


def test_traffic_resumes_within_two_slowest_polls_of_the_endpoint_coming_back(behind_proxy):
    a, b, proxy = behind_proxy
    a.send(udp(A, B, b"before"))
    assert wait_until(lambda: b.delivered == [udp(A, B, b"before")], 10)
    proxy.outage()
    time.sleep(3)  # long enough for every backoff to reach its ceiling
    assert not b.guard.healthy
    proxy.clear()
    back = time.monotonic()
    a.send(udp(A, B, b"after"))
    assert wait_until(lambda: udp(A, B, b"after") in b.delivered, 10)
    took = time.monotonic() - back
    put = a.stats.latency_medians().get("put", 0.0)
    print(f"delivered {took * 1000:.0f} ms after the endpoint returned (the PUT alone takes ~{put * 1000:.0f} ms)")
    assert took - put < 2 * SLOWEST + 0.5  # plus the LIST and GET themselves, on a busy machine
    sender_accounts_for_every_packet(a)


def test_under_slowdown_the_request_rate_falls_instead_of_hammering(behind_proxy):
    _, b, proxy = behind_proxy
    b.heartbeat.faster()  # hold the receiver at its fastest: ~a LIST every few milliseconds
    time.sleep(1)
    started = time.monotonic()
    before = proxy.rate(Op.LIST_OBJECTS, since=started - 1, until=started)
    proxy.slowdown()
    time.sleep(6)
    first = proxy.rate(since=started, until=started + 1)
    last = proxy.rate(since=started + 4, until=started + 6)
    proxy.clear()
    print(f"requests per second: {before:.0f} unthrottled, {first:.1f} in the first second of SlowDown, "
          f"{last:.1f} after 4 s of it")
    assert last < before / 10
    assert last <= 2.0
    assert wait_until(lambda: b.guard.healthy, 15)  # and it comes back once the service does


def test_a_doorbell_that_fails_leaves_the_receiver_listening_by_listing(s3_server, bucket, fault_proxy):
    from agent.metrics import Stats
    from agent.transport import Guard, open_doorbell
    from agent.transport.sqs import QUEUE_ATTRIBUTES, queue_name

    s3_server.sqs_client().create_queue(QueueName=queue_name("faulty/", B), Attributes=QUEUE_ATTRIBUTES)
    guard = Guard(Stats())
    doorbell = open_doorbell(fault_proxy.endpoint_url, "us-east-1", guard, B, "faulty/")
    assert doorbell.unknown_for == 0  # made beforehand: it waits on bells from the start
    fault_proxy.error500(ops=Op.SQS)  # its queue was found; every SQS request fails from now on
    a = Side(s3_server.endpoint_url, bucket, A, key_prefix="faulty/").start(receive=False)
    b = Side(s3_server.endpoint_url, bucket, B, key_prefix="faulty/", doorbell=doorbell, guard=guard).start()
    try:
        sent = [udp(A, B, f"heard anyway {n}".encode()) for n in range(3)]
        for data in sent:
            a.send(data)
            time.sleep(0.3)
        assert wait_until(lambda: b.delivered == sent, 25)  # the bell loop fell back to listing
    finally:
        fault_proxy.clear()
        doorbell.close()
        a.close()
        b.close()


@pytest.mark.root
def test_agents_behind_the_proxy_keep_carrying_ping_through_faults_and_an_outage(lab: Lab):
    from fault_proxy import FaultProxy

    with FaultProxy(lab.server.endpoint_url) as proxy:
        endpoint = ["--endpoint-url", proxy.endpoint_url]
        local = lab.spawn_agent("local", *endpoint)
        peer = lab.start_peer(*endpoint)
        proxy.inject(Kind.RESET, probability=0.1)
        proxy.inject(Kind.SLOWDOWN, probability=0.1)
        result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "20", "-i", "0.2", "-W", "5",
                        str(lab.peer_address), timeout=120)
        print("ping under 20% faults:", result.stdout.strip().splitlines()[-2])
        assert " 0 received" not in result.stdout
        proxy.clear()
        proxy.outage()
        time.sleep(5)
        proxy.clear()
        back = time.monotonic()
        while time.monotonic() - back < 10:
            ping = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "1", "-W", "1",
                          str(lab.peer_address), timeout=10)
            if ping.returncode == 0:
                break
        took = time.monotonic() - back
        print(f"after a 5 s outage, ping got through {took:.2f} s after the endpoint returned")
        assert ping.returncode == 0
        assert took < 2 * 0.5 + 1.5  # two slowest polls (0.5 s), plus a ping's own wait on a busy machine
        for process in (local, peer):
            assert process.poll() is None
            rss = rss_mib(process.pid)
            print(f"agent {process.pid}: {rss:.0f} MiB RSS")
            assert rss < 150
        with inside(lab.namespaces["local"].name):
            page = lab_traffic.fetch_metrics(lab.local_address)
        identity = {name: value for name, value in metric_values(page).items()
                    if name in ("hoshino_packets_read_total", "hoshino_packets_egressed_total",
                                "hoshino_dropped_packets_total", "hoshino_ignored_packets_total")}
        egress_drops = sum(value for label, value in metric_labels(page, "hoshino_dropped_packets_total").items()
                           if label in ("s3_error", "egress_queue_full", "unknown_peer"))
        assert identity["hoshino_packets_read_total"] == identity["hoshino_packets_egressed_total"] + egress_drops + \
            identity.get("hoshino_ignored_packets_total", 0)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def metric_values(page: str) -> dict[str, float]:
    """Every sample of the page, summed over its labels."""
    totals: dict[str, float] = {}
    for line in page.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def metric_labels(page: str, name: str) -> dict[str, float]:
    """A labelled counter's samples by the value of its one label."""
    found = {}
    for line in page.splitlines():
        if line.startswith(name + "{"):
            label = line.split('"')[1]
            found[label] = float(line.rsplit(" ", 1)[1])
    return found


def test_two_puts_that_end_out_of_order_are_delivered_in_key_order(s3_server, bucket, fault_proxy):
    """A slow PUT and a quick one after it, both in flight to a destination that rings: the later object lands
    first, its bell waits for the earlier one's, and the receiver delivers both in the order they were sent."""
    from agent.metrics import Stats
    from agent.transport import Guard, make_doorbell, open_doorbell
    from agent.transport.sqs import QUEUE_ATTRIBUTES, queue_name

    s3_server.sqs_client().create_queue(QueueName=queue_name("ordered/", B), Attributes=QUEUE_ATTRIBUTES)
    guard_a, guard_b = Guard(Stats()), Guard(Stats())
    ringer = make_doorbell(s3_server.endpoint_url, "us-east-1", guard_a, A, "ordered/")
    doorbell = open_doorbell(s3_server.endpoint_url, "us-east-1", guard_b, B, "ordered/")
    a = Side(fault_proxy.endpoint_url, bucket, A, key_prefix="ordered/", doorbell=ringer, guard=guard_a)
    a.start(receive=False)
    b = Side(s3_server.endpoint_url, bucket, B, key_prefix="ordered/", doorbell=doorbell, guard=guard_b).start()
    try:
        first, slow, quick = (udp(A, B, text.encode()) for text in ("rings", "PUT slowly", "PUT quickly, after"))
        assert a.egress.limit_for(B) == 1  # not rung yet: one object at a time
        a.send(first)
        assert wait_until(lambda: b.delivered == [first], 15)
        assert wait_until(lambda: a.egress.limit_for(B) == 2, 5)  # it hears of objects in the order rung
        a.events.drain()
        stalled = fault_proxy.stall(seconds=1.5, ops=Op.PUT_OBJECT, count=1)
        a.egress.handle(slow)
        assert wait_until(lambda: stalled.remaining == 0, 5)  # its PUT is held in the proxy
        a.egress.handle(quick)
        assert a.egress.wait_idle(15)
        sent = [event.key for event in a.events.drain() if isinstance(event, PacketSeen) and event.verdict == "sent"]
        assert len(sent) == 2 and sent[0] > sent[1]  # the later key's PUT ended first
        assert wait_until(lambda: len(b.delivered) == 3, 15)
        assert b.delivered == [first, slow, quick]
    finally:
        fault_proxy.clear()
        doorbell.close()
        ringer.close()
        a.close()
        b.close()


def test_a_destination_that_lists_has_one_object_in_flight(behind_proxy):
    a, b, proxy = behind_proxy
    proxy.stall(seconds=1.0, ops=Op.PUT_OBJECT, count=1)
    sent = [udp(A, B, f"listed {n}".encode()) for n in range(2)]
    for data in sent:
        a.egress.handle(data)
    assert a.egress.limit_for(B) == 1
    assert wait_until(lambda: len(b.delivered) == 2, 15)
    assert b.delivered == sent
