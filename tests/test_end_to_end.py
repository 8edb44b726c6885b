"""Two real agents, their TUN devices in namespaces this test makes, real traffic through the bucket."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from agent import netconf
from agent.lab import Lab, free_port, run_in, traffic
from agent.netconf import inside
from agent.tun import Tun

pytestmark = pytest.mark.root
TRANSFER_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def pair():
    """The lab with both agents running, shared by the traffic tests of this module."""
    with Lab(bucket=f"e2e-{secrets.token_hex(4)}") as lab:
        lab.spawn_agent("local")
        lab.start_peer()
        yield lab


def ns(lab: Lab, role: str) -> str:
    return lab.namespaces[role].name


@pytest.mark.engines
@pytest.mark.parametrize(("source", "target"), [("local", "peer"), ("peer", "local")])
def test_ping_both_ways_without_loss(pair, source, target):
    result = run_in(ns(pair, source), "ping", "-6", "-n", "-c", "20", "-i", "0.2", "-W", "5",
                    str(pair.address(target)), timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 packets transmitted, 20 received, 0% packet loss" in result.stdout
    print(result.stdout.strip().splitlines()[-1])


@pytest.mark.engines
def test_tcp_transfer_of_5_mb_arrives_intact(pair):
    payload = os.urandom(TRANSFER_BYTES)
    port = 5001
    ready = threading.Event()

    def serve() -> None:
        with inside(ns(pair, "peer")), socket.create_server(
            (str(pair.peer_address), port), family=socket.AF_INET6
        ) as server:
            ready.set()
            server.settimeout(60)
            connection, _ = server.accept()
            with connection:
                connection.sendall(payload)

    server = threading.Thread(target=serve)
    server.start()
    assert ready.wait(10)
    received = bytearray()
    started = time.monotonic()
    with inside(ns(pair, "local")), socket.create_connection((str(pair.peer_address), port), timeout=60) as conn:
        while chunk := conn.recv(1 << 20):
            received += chunk
    seconds = time.monotonic() - started
    server.join(timeout=10)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()
    print(f"5 MB over TCP in {seconds:.2f} s: {TRANSFER_BYTES / seconds / 1e6:.2f} MB/s")


@pytest.mark.engines
def test_udp_exchange(pair):
    with inside(ns(pair, "local")):
        for size in (1, 512, 1400, 9000, 40000):
            payload = os.urandom(size)
            assert traffic.udp_round_trip(pair.peer_address, payload, timeout=10) == payload


def test_metrics_page_over_the_tunnel_with_curl(pair):
    result = run_in(ns(pair, "local"), "curl", "-sS", "--max-time", "20",
                    f"http://[{pair.peer_address}]:8081/metrics")
    assert result.returncode == 0, result.stderr
    assert "hoshino_packets_ingressed_total" in result.stdout
    assert 'hoshino_s3_read_operations_total{operation="list"}' in result.stdout
    assert "hoshino_heartbeat_interval_seconds" in result.stdout


def agent_command(lab: Lab, role: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "agent", "--bucket", lab.bucket, "--endpoint-url", lab.server.endpoint_url,
        "--address", str(lab.address(role)), "--netns", ns(lab, role), *extra,
    ]


def test_agent_removes_its_device_on_sigterm(lab):
    process = lab.spawn_agent("local")
    assert netconf.device_exists("hoshino0", ns(lab, "local"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert not netconf.device_exists("hoshino0", ns(lab, "local"))
    assert "Traceback" not in lab.agent_log(process)


def run_agent(command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_missing_bucket_is_a_clear_error(lab):
    result = run_agent([*agent_command(lab, "local"), "--bucket", "no-such-bucket"])
    assert result.returncode == 1
    assert "bucket does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_endpoint_is_a_clear_error(lab):
    result = run_agent([*agent_command(lab, "local"), "--endpoint-url", f"http://127.0.0.1:{free_port()}"])
    assert result.returncode == 1
    assert "cannot reach S3" in result.stderr


def test_address_in_use_is_a_clear_error(lab):
    first = lab.spawn_agent("local", "--metrics-listen", "off")
    second = run_agent([*agent_command(lab, "local"), "--interface", "hoshino1", "--metrics-listen", "off"])
    assert second.returncode == 1
    assert "already in use" in second.stderr
    assert first.poll() is None


def test_without_root_names_the_fix(lab):
    result = run_agent(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        *agent_command(lab, "local")])
    assert result.returncode == 1
    assert "needs CAP_NET_ADMIN: run as root" in result.stderr


def test_refused_mtu_names_the_largest(lab):
    with Tun("hoshino9", ns(lab, "local")) as tun, pytest.raises(netconf.NetconfError, match="at most 65535"):
        netconf.configure(tun.name, lab.local_address, lab.network, 70000, ns(lab, "local"))


def test_a_read_takes_every_packet_waiting_in_one_go(lab):
    """What a busy device has waiting comes out of one read (one select for many packets), each whole."""
    with Tun("hoshino9", ns(lab, "local")) as tun:
        netconf.configure(tun.name, lab.local_address, lab.network, 1500, ns(lab, "local"))
        with inside(ns(lab, "local")), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            for n in range(10):
                sock.sendto(n.to_bytes(4, "big"), (str(lab.peer_address), 9))
        datagrams = [packet for packet in tun.read(2000) or [] if packet[6] == 17]  # UDP, not the router's own
        assert [int.from_bytes(packet[48:52], "big") for packet in datagrams] == list(range(10))
        tun.stop_reading()
        assert tun.read(2000) is None
