"""Per-peer counters, a node's metrics page read back (agent.scrape), and hoshino-agent status on a served page."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from loops import Side
from packets_factory import A4, B4, A, B, echo_request, udp, udp4
from prometheus_client import CollectorRegistry

from agent import metrics, status
from agent.heartbeat import Heartbeat
from agent.lab import free_port
from agent.lab.network import ADDRESSES, NOW, STARTED, LabPages, page
from agent.metrics import OTHER_PEER, PeerLabels, Running, Stats
from agent.scrape import ScrapeError, fetch, metrics_url, node_pace, pace, parse, peer_url, scrape

C = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::c")
STRANGER = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::99")


def test_a_sealed_node_labels_the_peers_its_file_lists_and_no_one_else():
    listed = {A, B}
    labels = PeerLabels(lambda: listed)
    assert (labels(A), labels(C), labels(None)) == (A.compressed, OTHER_PEER, OTHER_PEER)
    listed.add(C)  # a reloaded peers file counts from then on
    assert labels(C) == C.compressed


def test_an_unsealed_node_labels_the_first_addresses_it_meets_and_the_rest_as_other():
    labels = PeerLabels(limit=2)
    assert [labels(address) for address in (A, B, C, A)] == [A.compressed, B.compressed, OTHER_PEER, A.compressed]


def test_a_writer_to_the_bucket_cannot_grow_the_page_past_the_bound():
    stats = Stats(peer_labels=PeerLabels(limit=3))
    network = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
    for host in range(1, 1000):
        stats.ingressed(1, 100, stats.peer_label(network[host]))
    assert len(stats.peer_bytes) == 4  # three addresses and 'other'
    assert stats.peer_bytes[(OTHER_PEER, "in")] == 996 * 100


@pytest.fixture
def sides(s3_server, bucket) -> Iterator[tuple[Side, Side]]:
    a, b = Side(s3_server.endpoint_url, bucket, A).start(False), Side(s3_server.endpoint_url, bucket, B).start(False)
    yield a, b
    a.close()
    b.close()


def test_the_loops_count_each_peer_both_ways(sides):
    a, b = sides
    sent = [echo_request(A, B), udp(A, B, b"hello")]
    for data in sent:
        a.egress.handle(data)
    assert a.egress.wait_idle()
    assert b.receive() == 1
    size = sum(map(len, sent))
    assert a.stats.peer_packets[(B.compressed, "out")] == 2 and a.stats.peer_bytes[(B.compressed, "out")] == size
    assert b.stats.peer_packets[(A.compressed, "in")] == 2 and b.stats.peer_bytes[(A.compressed, "in")] == size
    assert a.stats.peer_requests[B.compressed] == 1  # its PUT
    assert b.stats.peer_requests[A.compressed] == 1  # its GET
    assert A.compressed in b.stats.peer_heard and B.compressed not in a.stats.peer_heard


def test_an_unsealed_ipv4_packet_counts_for_the_node_its_source_is_derived_from(sides):
    a, b = sides
    a.egress.handle(udp4(A4, B4))
    assert a.egress.wait_idle()
    assert b.receive() == 1
    assert b.stats.peer_packets[(A.compressed, "in")] == 1


def test_a_page_reads_back_as_the_node_counted_it():
    report = parse(page("local"), "http://[::1]:8081/metrics", NOW)
    assert (report.address, report.key_id, report.state, report.wakeup) == (
        ADDRESSES["local"].compressed, "5f1c0a9e3b7d2468", "running", "sqs")
    assert report.started_at == STARTED and report.uptime == NOW - STARTED
    peer = report.peers[ADDRESSES["peer"].compressed]
    assert (peer.name, peer.routes, peer.listed) == ("peer", ("192.0.2.0/24",), True)
    assert (peer.packets_out, peer.bytes_out, peer.packets_in, peer.bytes_in) == (41_000, 41_000 * 1_180, 22_500,
                                                                                  22_500 * 96)
    assert peer.requests == 9_400 + 8_800 and peer.last_heard == NOW - 2
    assert report.peers[ADDRESSES["third"].compressed].last_heard == NOW - 600
    assert report.dollars > peer.dollars > 0
    assert pace(report, peer.peer).requests == pytest.approx((9_400 + 8_800) * 86400 / (NOW - STARTED))


def test_pace_between_two_readings_and_after_a_restart():
    first = parse(page("local"), scraped_at=NOW)
    later = parse(page("local"), scraped_at=NOW + 60)
    peer = ADDRESSES["peer"].compressed
    assert pace(later, peer, first).requests == 0  # nothing moved between the two
    assert node_pace(later, first).dollars == 0
    restarted = parse(page("local", started=NOW), scraped_at=NOW + 60)
    assert pace(restarted, peer, first).requests == pytest.approx(18_200 * 86400 / 60)  # since its start


@pytest.mark.parametrize("text, why", [("garbage{", "not a metrics page"), ("# nothing\n", "not a Hoshino node's")])
def test_a_page_that_is_not_a_nodes_is_refused_in_words(text, why):
    with pytest.raises(ScrapeError, match=why):
        parse(text)


@pytest.mark.parametrize("where, url", [
    ("8081", "http://[::1]:8081/metrics"),
    ("127.0.0.1:9100", "http://127.0.0.1:9100/metrics"),
    ("[fd5e::b]:8081", "http://[fd5e::b]:8081/metrics"),
    ("http://[::1]:8081/metrics", "http://[::1]:8081/metrics"),
])
def test_metrics_option_takes_a_port_an_address_or_a_url(where, url):
    assert metrics_url(where) == url


def test_metrics_option_refuses_a_bare_ipv6_address():
    with pytest.raises(ValueError, match=r"\[IPV6\]:PORT"):
        metrics_url("fd5e::b:8081")


def test_status_refuses_a_timeout_of_nothing(capsys):
    assert status.run("8081", timeout=0) == 2
    assert "--timeout 0: give a number of seconds above 0" in capsys.readouterr().err


def served(stats: Stats) -> tuple[str, object]:
    registry = CollectorRegistry()
    registry.register(metrics.NodeCollector(stats, Heartbeat(0.001, 0.5), {"address": A.compressed, "key_id": ""},
                                            running=lambda: Running("running", "poll", NOW)))
    port = free_port()
    return f"127.0.0.1:{port}", metrics.serve(registry, "127.0.0.1", port)


def test_status_reads_a_served_page_and_prints_its_peers(capsys):
    stats = Stats()
    stats.ingressed(3, 300, stats.peer_label(STRANGER))
    where, server = served(stats)
    try:
        assert status.run(where, as_json_output=True, pace_seconds=0) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["node"]["address"] == A.compressed and shown["node"]["wakeup"] == "poll"
        assert shown["node"]["heartbeat_seconds"] == pytest.approx(0.5) and shown["pace"] == "since start"
        assert [(peer["peer"], peer["bytes_in"]) for peer in shown["peers"]] == [(STRANGER.compressed, 300)]
        assert status.run(where, pace_seconds=0) == 0
        table = capsys.readouterr().out
        assert "key none (unsealed)" in table and STRANGER.compressed in table
        assert "wakes by polling, every 500 ms now" in table
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def test_status_gives_the_pace_between_two_readings_of_the_page(capsys):
    """Requests made between the two readings are the current pace, not diluted by the time since start."""
    stats = Stats()
    label = stats.peer_label(STRANGER)
    where, server = served(stats)
    timer = threading.Timer(0.3, lambda: [stats.peer_request(label, "s3", "get") for _ in range(10)])
    try:
        timer.start()
        assert status.run(where, as_json_output=True, pace_seconds=1.0) == 0
        shown = json.loads(capsys.readouterr().out)
        assert re.fullmatch(r"the last 1\.\d s", shown["pace"])
        (peer,) = shown["peers"]
        assert peer["requests_per_day"] == pytest.approx(10 * 86400 / float(shown["pace"].split()[2]), rel=0.01)
    finally:
        timer.cancel()
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def test_status_refuses_a_pace_beyond_a_minute(capsys):
    assert status.run("8081", pace_seconds=61) == 2
    assert "--pace 61: give seconds from 0 (since start) to 60" in capsys.readouterr().err


def test_status_probes_every_peer_and_tells_which_answer():
    pages = LabPages()
    report = scrape(pages.local_url, get=pages, clock=lambda: NOW)
    lines = status.peer_lines(report, status.probe_peers(report, get=pages, clock=lambda: NOW))
    assert [(line.name, line.metrics) for line in lines] == [("peer", "answers"), ("third", "unreachable (timed out)")]
    table = status.as_table(report, lines)
    assert "2s ago" in table and "10m ago" in table and "192.0.2.0/24" in table


def test_a_closed_port_is_refused_in_one_word():
    with pytest.raises(ScrapeError, match=r"^refused$"):
        fetch(f"http://127.0.0.1:{free_port()}/metrics", 2.0)
    assert peer_url("fd5e:59b8:f71d:9a3e:0::b") == "http://[fd5e:59b8:f71d:9a3e::b]:8081/metrics"


def test_status_without_an_agent_says_where_it_looked():
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "agent", "status", "--metrics", f"127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"no agent answers at http://127.0.0.1:{port}/metrics (refused)" in result.stderr
    assert "Traceback" not in result.stderr

