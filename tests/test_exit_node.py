"""An exit node: a private node whose only way out is hoshino0 fetches 20 MB from an "internet" namespace
of the test's own, over IPv4 and IPv6, through a peer that forwards and masquerades; a node that is not
the exit's peer cannot use it; on stop the table, the sysctls, the rules and the routes are gone."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest
import ulid

from agent import gateway, ip, wire
from agent.lab import Lab, Namespace, run_in, wait_until
from agent.lab import traffic as lab_traffic
from agent.lab.hostile import plant
from agent.lab.internet import PORT, SERVER4, SERVER6, UPLINK4, UPLINK6, Internet
from agent.lab.links import Relay, address, default_route, veth
from agent.lab.peers_files import RoutingKeys
from agent.netconf import inside
from agent.sealing import Peers, Sealer, load_private_key
from agent.transport.s3 import SO_MARK, client

pytestmark = pytest.mark.root
FILE = os.urandom(20 * 1024 * 1024)
SMALL = 2 * 1024 * 1024
"""What the agent-inside-the-namespace test fetches: its S3 requests cross a relay of the test's (Python)."""


@pytest.fixture
def internet(lab: Lab) -> Iterator[Internet]:
    """The internet namespace, linked to the lab's 'local' namespace (the exit's) by a veth: its uplink."""
    net = Internet(lab.namespaces["local"].name, FILE, SMALL)
    try:
        yield net
    finally:
        net.close()


def sysctls(namespace: str) -> dict[str, str]:
    names = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/up0/accept_ra")
    return {name: run_in(namespace, "cat", f"/proc/sys/{name}").stdout.strip() for name in names}


def policy(namespace: str) -> str:
    """The rules and the tunnel's table, both families: empty once the exit node is no longer used."""
    shown = ""
    for family in ("-4", "-6"):
        shown += run_in(namespace, "ip", family, "rule").stdout
        shown += run_in(namespace, "ip", family, "route", "show", "table", str(gateway.MARK)).stdout
    return shown


def kernel_state(namespace: str) -> str:
    """Every policy rule and every route of both families, less those of the device itself (its addresses'
    and network's, which live as long as it does): what using an exit node may change, and must give back."""
    shown = []
    for family in ("-4", "-6"):
        shown += run_in(namespace, "ip", family, "rule").stdout.splitlines()
        shown += [line for line in run_in(namespace, "ip", family, "route", "show", "table", "all").stdout.splitlines()
                  if "hoshino0" not in line or f"table {gateway.MARK}" in line]
    return "\n".join(shown)


def reloaded(lab: Lab, process, count: int) -> bool:
    """Wait until the agent has told its count-th reload of the peers file (in the line it prints when the
    reload is done, not in a log line before it)."""
    return wait_until(lambda: sum(line.startswith("hoshino-agent: peers file reloaded")
                                  for line in lab.agent_log(process).splitlines()) >= count, 20)


def fetch(namespace: str, url: str, into: Path) -> tuple[str, float]:
    """curl url from the namespace into a file; its sha256 and the bytes per second curl measured."""
    # No deadline for the whole: the shared machine sets the pace. curl gives up only on a stall (a minute
    # without a byte), which a working tunnel never has.
    result = run_in(namespace, "curl", "-sS", "--speed-limit", "1", "--speed-time", "60", "-o", str(into),
                    "-w", "%{speed_download}", url, timeout=3600)
    assert result.returncode == 0, result.stderr
    return hashlib.sha256(into.read_bytes()).hexdigest(), float(result.stdout)


def stop(lab: Lab, process) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, lab.agent_log(process)
    assert "Traceback" not in lab.agent_log(process)


def test_a_private_node_fetches_through_the_exit_node_in_both_families(lab: Lab, internet: Internet, tmp_path: Path):
    exit_ns, private_ns = lab.namespaces["local"].name, lab.namespaces["peer"].name
    keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer")})
    keys.write_peers("exit", {"private": []})
    keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
    before = sysctls(exit_ns)
    rules_before = policy(private_ns)
    exit_node = lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
    private = lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")))
    assert sysctls(exit_ns) == {**before, "net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1",
                                "net/ipv6/conf/up0/accept_ra": "2"}
    assert f"table inet {gateway.table_name('hoshino0')}" in run_in(exit_ns, "nft", "list", "tables").stdout

    expected = hashlib.sha256(FILE).hexdigest()
    speeds = {}
    for family, seen_as in ((4, UPLINK4), (6, UPLINK6)):
        digest, speeds[family] = fetch(private_ns, internet.url(family), tmp_path / f"file-{family}")
        assert digest == expected, family
        assert internet.clients[-1] == seen_as, internet.clients  # masqueraded: the server sees the exit node
    print(", ".join(f"20 MB through the exit node over IPv{family}: {speed / 1e6:.2f} MB/s"
                    for family, speed in speeds.items()))
    # The tunnel itself still runs (the agents' S3 traffic did not follow the default route into it).
    ping = run_in(private_ns, "ping", "-6", "-n", "-c", "2", "-W", "5", str(lab.address("local")), timeout=30)
    assert ping.returncode == 0, ping.stdout

    stop(lab, private)
    assert policy(private_ns) == rules_before
    stop(lab, exit_node)
    assert sysctls(exit_ns) == before
    assert gateway.table_name("hoshino0") not in run_in(exit_ns, "nft", "list", "tables").stdout


def test_a_node_that_is_not_the_exit_node_s_peer_cannot_use_it(lab: Lab, internet: Internet, tmp_path: Path):
    exit_ns = lab.namespaces["local"].name
    stranger_address = lab.network.network_address + 0x5
    keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer"),
                                  "stranger": stranger_address})
    keys.write_peers("exit", {"private": []})
    keys.write_peers("stranger", {"exit": ["0.0.0.0/0", "::/0"]})
    lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
    stranger = Sealer(load_private_key(tmp_path / "stranger.key"), stranger_address, Peers(tmp_path / "stranger.toml"))
    datagram = dpkt.udp.UDP(sport=4000, dport=PORT, data=b"let me out")
    datagram.ulen = len(bytes(datagram))
    packet = bytes(dpkt.ip.IP(src=ip.derived_ipv4(stranger_address).packed,
                              dst=ipaddress.IPv4Address(SERVER4).packed, p=17, ttl=64, data=datagram))
    key = f"{wire.inbox('', lab.address('local'))}{ulid.ULID.from_timestamp(time.time())}"

    def dropped() -> dict[str, float]:
        with inside(exit_ns):
            page = lab_traffic.fetch_metrics(lab.address("local"))
        return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
                if line.startswith("hoshino_dropped_packets_total{")}

    before = dropped().get("unknown_sender", 0)
    plant(lab.server, lab.sqs, lab.bucket, key, stranger.seal(key, wire.encode([packet])), lab.address("local"))
    assert wait_until(lambda: dropped().get("unknown_sender", 0) == before + 1, 15), dropped()
    assert "let me out" not in str(internet.clients)


def test_the_agent_s_connections_carry_the_mark(lab: Lab):
    made = client("s3", lab.server.endpoint_url, "us-east-1", mark=gateway.MARK)
    made.list_buckets()
    pool = made._endpoint.http_session._manager.connection_from_url(lab.server.endpoint_url)
    sockets = [connection.sock for connection in pool.pool.queue if connection is not None and connection.sock]
    assert sockets
    assert {sock.getsockopt(socket.SOL_SOCKET, SO_MARK) for sock in sockets} == {gateway.MARK}


def test_an_agent_inside_the_private_namespace_keeps_its_s3_traffic_off_the_tunnel(
        lab: Lab, internet: Internet, tmp_path: Path):
    """The private node's agent runs in its namespace, where S3 is reached through the default route
    (a veth to a namespace of the test's own): only policy routing keeps its requests out of the tunnel."""
    private_ns = lab.namespaces["peer"].name
    s3 = Namespace("s3")
    relays: list[Relay] = []
    try:
        veth(private_ns, "s3link", s3.name, "eth0")
        address(private_ns, "s3link", "192.0.2.2/25")
        address(s3.name, "eth0", "192.0.2.1/25")
        address(s3.name, "lo", "192.0.2.200/32")
        default_route(private_ns, "192.0.2.1")
        relays = [Relay(s3.name, "192.0.2.200", server.port) for server in (lab.server, lab.sqs)]
        keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer")})
        keys.write_peers("exit", {"private": []})
        keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
        lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
        private = lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")),
                                  "--endpoint-url", relays[0].endpoint_url, "--sqs-endpoint-url",
                                  relays[1].endpoint_url, inside=True)
        assert "default dev hoshino0" in run_in(private_ns, "ip", "-4", "route", "show", "table",
                                                str(gateway.MARK)).stdout
        digest, speed = fetch(private_ns, internet.url(4, "/small"), tmp_path / "file")
        assert digest == hashlib.sha256(FILE[:SMALL]).hexdigest()
        assert internet.clients[-1] == UPLINK4
        assert relays[0].connections > 0  # its S3 requests went out of the veth, not into the tunnel
        print(f"2 MB through the exit node, agent inside the namespace: {speed / 1e6:.2f} MB/s")
        stop(lab, private)
    finally:
        for relay in relays:
            relay.close()
        s3.close()


def test_sighup_follows_the_peers_file_off_the_exit_node_to_another_and_back(
        lab: Lab, internet: Internet, tmp_path: Path):
    """--exit-node by name: a reload that leaves no such exit node removes the default routes and rules
    exactly; one that gives the name to another peer moves the traffic there; one that brings it back
    puts them back once."""
    private_ns = lab.namespaces["peer"].name
    other = lab.network.network_address + 0xF  # an exit node that never runs: what is sent to it waits in its inbox
    keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer"), "other": other})
    defaults = ["0.0.0.0/0", "::/0"]
    keys.write_peers("exit", {"private": []})
    keys.write_peers("private", {"exit": defaults})
    before = kernel_state(private_ns)
    lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
    private = lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", "exit")
    small = hashlib.sha256(FILE[:SMALL]).hexdigest()
    assert fetch(private_ns, internet.url(4, "/small"), tmp_path / "one")[0] == small
    using = kernel_state(private_ns)
    assert f"default dev hoshino0 table {gateway.MARK}" in using

    # The exit node stays a peer but carries no default route any more: --exit-node exit no longer applies.
    keys.write_peers("private", {"exit": []})
    private.send_signal(signal.SIGHUP)
    assert reloaded(lab, private, 1), lab.agent_log(private)
    assert "is no longer in the peers file with routes" in lab.agent_log(private)
    assert kernel_state(private_ns) == before
    assert "unreachable" in run_in(private_ns, "ip", "route", "get", SERVER4).stderr  # no way out: none is left
    refused = run_in(private_ns, "curl", "-sS", "-o", "/dev/null", internet.url(4, "/small"), timeout=60)
    assert refused.returncode == 7, refused.stderr  # fails at once

    # The name moves to another peer: the routes come back, and the internet's traffic goes to that peer.
    keys.write_peers("private", {"exit": defaults, "other": defaults}, names={"exit": "old", "other": "exit"})
    private.send_signal(signal.SIGHUP)
    assert reloaded(lab, private, 2), lab.agent_log(private)
    assert kernel_state(private_ns) == using
    inbox = wire.inbox("", other)
    s3 = lab.server.client()
    run_in(private_ns, "ping", "-4", "-n", "-c", "1", "-W", "1", SERVER4, timeout=30)
    assert wait_until(lambda: s3.list_objects_v2(Bucket=lab.bucket, Prefix=inbox).get("KeyCount", 0) > 0, 20)

    # And back to the real exit node: the same routes and rules, once, and the fetch goes through again.
    keys.write_peers("private", {"exit": defaults, "other": defaults}, names={"other": "old"})
    private.send_signal(signal.SIGHUP)
    assert reloaded(lab, private, 3), lab.agent_log(private)
    assert kernel_state(private_ns) == using
    assert fetch(private_ns, internet.url(6, "/small"), tmp_path / "two")[0] == small
    assert internet.clients[-1] == UPLINK6

    # The exit peer struck off the file: everything as before.
    keys.write_peers("private", {"other": []})
    private.send_signal(signal.SIGHUP)
    assert reloaded(lab, private, 4), lab.agent_log(private)
    assert kernel_state(private_ns) == before
    stop(lab, private)
    assert kernel_state(private_ns) == before


def test_a_routing_table_in_use_already_is_refused_and_left_alone():
    """A second agent with --exit-node in one namespace (or a killed one's leftovers) would share table
    18515 and its rules, and its stop would take the first one's away: refused, naming what is there."""
    namespace, other = Namespace("table"), Namespace("tablepeer")
    try:
        veth(namespace.name, "t0", other.name, "eth0")
        run_in(namespace.name, "ip", "route", "add", "default", "dev", "t0", "table", str(gateway.MARK))
        before = kernel_state(namespace.name)
        with pytest.raises(gateway.GatewayError, match=rf"routing table {gateway.MARK} and mark 0x4853 are in use "
                                                       rf"already .*default dev t0"):
            gateway.use_exit_node(gateway.Undo(), namespace.name, "t0")
        assert kernel_state(namespace.name) == before
    finally:
        other.close()
        namespace.close()


class Digester:
    """A TCP service in the internet namespace that reads until the client's half-close, then answers with
    the sha256 of what it read: a relay that loses bytes or half-closes never gets the right answer."""

    def __init__(self, internet: Internet, port: int = 9000) -> None:
        self.port = port
        self.clients: list[str] = []
        with inside(internet.namespace.name):
            self._listeners = [socket.create_server((SERVER4, port)),
                               socket.create_server((SERVER6, port), family=socket.AF_INET6)]
        for listener in self._listeners:
            threading.Thread(target=self._serve, args=(listener,), daemon=True).start()

    def _serve(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, client = listener.accept()
                self.clients.append(client[0])
                with connection:
                    digest = hashlib.sha256()
                    while data := connection.recv(1 << 16):
                        digest.update(data)
                    connection.sendall(digest.hexdigest().encode())

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()


def exchange(namespace: str, host: str, port: int, data: bytes) -> bytes:
    """From the namespace: connect, send data, half-close, read the answer to the end."""
    with inside(namespace):
        connection = socket.create_connection((host, port), timeout=120)
    with connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(1 << 16):
            answer += chunk
    return answer


def relay_counts(lab: Lab) -> dict[str, float]:
    with inside(lab.namespaces["local"].name):
        page = lab_traffic.fetch_metrics(lab.address("local"))
    return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
            if line.startswith("hoshino_relay_connections_total{")}


def test_the_exit_node_relays_tcp_both_ways_with_half_close_and_resets_what_the_destination_refuses(
        lab: Lab, internet: Internet, tmp_path: Path):
    exit_ns, private_ns = lab.namespaces["local"].name, lab.namespaces["peer"].name
    keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer")})
    keys.write_peers("exit", {"private": []})
    keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
    lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
    lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")))
    digester = Digester(internet)
    try:
        upload = os.urandom(3 << 20)
        for host in (SERVER4, SERVER6):  # the upload's direction, and an answer after the half-close
            assert exchange(private_ns, host, digester.port, upload) == hashlib.sha256(upload).hexdigest().encode()
        assert digester.clients == [UPLINK4, UPLINK6]  # the exit node's own connections
        # A connection held open and idle: both of the relay's sockets probe their ends (TCP keepalive).
        with inside(private_ns):
            idle = socket.create_connection((SERVER4, digester.port), timeout=30)
        with idle:
            idle.sendall(b"still here")
            assert wait_until(lambda: run_in(exit_ns, "ss", "-tnoH", "state", "established").stdout.count(
                "timer:(keepalive") >= 2, 10), run_in(exit_ns, "ss", "-tnoH").stdout
    finally:
        digester.close()
    assert relay_counts(lab).get("relayed", 0) >= 2

    # Nothing listens there: the private node's connection, open already (the relay accepts before it connects
    # on), is reset at once, as the destination's refusal comes.
    started = time.monotonic()
    refused = run_in(private_ns, "curl", "-sS", "-o", "/dev/null", f"http://{SERVER4}:9/", timeout=60)
    assert refused.returncode == 56 and "Connection reset" in refused.stderr, refused.stderr
    assert time.monotonic() - started < 30
    assert wait_until(lambda: relay_counts(lab).get("unreachable", 0) >= 1, 10)

    # The relay's ports take only what the exit node's table redirected to them: not the internet's.
    ports = [int(port) for port in re.findall(r"redirect to :(\d+)", run_in(exit_ns, "nft", "list", "table", "inet",
                                                                             gateway.table_name("hoshino0")).stdout)]
    assert len(ports) == 2
    for port in ports:
        probe = run_in(internet.namespace.name, "curl", "-sS", "--max-time", "3", "-o", "/dev/null",
                       f"http://{UPLINK4}:{port}/", timeout=30)
        assert probe.returncode == 28, probe.stderr  # dropped: no answer at all
    assert "not_redirected" not in relay_counts(lab)


def test_with_exit_tcp_forward_the_exit_node_routes_tcp_as_it_came(lab: Lab, internet: Internet, tmp_path: Path):
    exit_ns, private_ns = lab.namespaces["local"].name, lab.namespaces["peer"].name
    keys = RoutingKeys(tmp_path, {"exit": lab.address("local"), "private": lab.address("peer")})
    keys.write_peers("exit", {"private": []})
    keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
    lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node", "--exit-tcp", "forward")
    lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")))
    assert "redirect" not in run_in(exit_ns, "nft", "list", "table", "inet", gateway.table_name("hoshino0")).stdout
    digester = Digester(internet)
    try:
        data = os.urandom(64 << 10)
        assert exchange(private_ns, SERVER4, digester.port, data) == hashlib.sha256(data).hexdigest().encode()
        assert digester.clients == [UPLINK4]  # masqueraded
    finally:
        digester.close()
    assert relay_counts(lab) == {}
