"""The node in-process, as the dashboard runs it: events, controls, clean stop."""

from __future__ import annotations

import pytest

from agent import netconf
from agent.events import EventQueue, NodeStarted, NodeStopped, Notice, PacketSeen, StatsSampled
from agent.lab import wait_until
from agent.node import Node, NodeError

pytestmark = pytest.mark.root


def events_of(queue: EventQueue, kind: type) -> list:
    return [event for event in queue.drain() if isinstance(event, kind)]


def test_node_publishes_events_obeys_controls_and_cleans_up(lab):
    lab.start_peer()
    events = EventQueue()
    node = Node(lab.local_config(metrics_listen=None), events)
    node.start()
    try:
        started = events_of(events, NodeStarted)
        assert started and started[0].address == str(lab.local_address)
        assert started[0].endpoint == lab.server.endpoint_url

        traffic = lab.start_traffic()
        seen: list[PacketSeen] = []
        snapshots: list[StatsSampled] = []

        def collect() -> bool:
            for event in events.drain():
                if isinstance(event, PacketSeen):
                    seen.append(event)
                elif isinstance(event, StatsSampled):
                    snapshots.append(event)
            verdicts = {(event.direction, event.verdict, event.protocol, event.reason) for event in seen}
            return {
                ("out", "sent", "ICMPv6", ""), ("in", "delivered", "ICMPv6", ""),
                ("out", "sent", "UDP", ""), ("in", "delivered", "UDP", ""),
                ("out", "sent", "TCP", ""), ("in", "delivered", "TCP", ""),
                ("out", "ignored", "UDP", "multicast"),  # the demo's mDNS-like datagram
                ("in", "dropped", "object", "bad_object"),  # the demo's hostile object
            } <= verdicts

        # The demo's traffic brings every pane of the dashboard to life within seconds.
        assert wait_until(collect, 15), sorted({(e.direction, e.verdict, e.protocol, e.reason) for e in seen})
        assert traffic.replies >= 1
        assert snapshots[-1].state == "running"
        assert snapshots[-1].s3_ops["put"] >= 1 and snapshots[-1].s3_ops["list"] >= 1
        assert any("echo-request" in event.summary for event in seen)

        before = node.interval
        node.faster()
        assert node.manual and node.interval == max(before / 2, node.heartbeat.fastest)
        held = node.interval
        node.slower()
        node.slower()
        assert node.interval == held * 4
        node.automatic()
        assert not node.manual
    finally:
        node.stop()
    assert node.wait(1)
    assert events_of(events, NodeStopped)
    assert not netconf.device_exists("hoshino0", lab.namespaces["local"].name)


def test_node_that_cannot_start_says_why_and_leaves_nothing(lab):
    node = Node(lab.local_config(bucket="absent-bucket", metrics_listen=None), EventQueue())
    with pytest.raises(NodeError, match="bucket does not exist"):
        node.start()
    assert not netconf.device_exists("hoshino0", lab.namespaces["local"].name)


def test_node_reports_s3_outage_and_recovery(lab):
    events = EventQueue()
    node = Node(lab.local_config(metrics_listen=None, wakeup="poll"), events)  # S3's requests fail first
    node.start()
    seen: list = []

    def states() -> list[str]:
        seen.extend(events.drain())
        return [event.state for event in seen if isinstance(event, StatsSampled)]

    try:
        assert wait_until(lambda: "running" in states(), 5)
        lab.server.process.terminate()
        lab.server.process.wait()
        assert wait_until(lambda: states()[-1:] == ["degraded"], 20)
        warnings = [e for e in seen if isinstance(e, Notice) and e.level == "warning"]
        assert any("cannot reach S3" in e.message for e in warnings)
        lab.server.restart()
        lab.server.create_bucket(lab.bucket)
        assert wait_until(lambda: states()[-1:] == ["running"], 20)
        # Recovery is told at the level of the failure it ends, so it is never quieter than the error.
        notices = [e.message for e in seen if isinstance(e, Notice) and e.level == "warning"]
        assert any("S3 answers again" in message for message in notices), notices
    finally:
        node.stop()
