"""IPv4 through the tunnel: each node's derived address in 100.64.0.0/10, ping, TCP and UDP between two agents."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import socket
import threading
from pathlib import Path

import pytest

from agent import ip
from agent.lab import Lab, run_in, wait_until
from agent.netconf import inside
from agent.sealing import encode_public_key, generate_key_file

pytestmark = pytest.mark.root
TRANSFER_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def pair():
    """Two unsealed agents: lab addresses ::a and ::b, so 100.64.0.10 and 100.64.0.11."""
    with Lab(bucket=f"v4-{secrets.token_hex(4)}") as lab:
        lab.spawn_agent("local")
        lab.start_peer()
        yield lab


def ns(lab: Lab, role: str) -> str:
    return lab.namespaces[role].name


def v4(lab: Lab, role: str) -> ipaddress.IPv4Address:
    return ip.derived_ipv4(lab.address(role))


def test_each_device_has_its_derived_ipv4_address_and_route(pair):
    assert str(v4(pair, "local")) == "100.64.0.10"
    shown = run_in(ns(pair, "local"), "ip", "-4", "addr", "show", "dev", "hoshino0").stdout
    assert "inet 100.64.0.10/32" in shown
    assert "100.64.0.0/10 dev hoshino0" in run_in(ns(pair, "local"), "ip", "-4", "route").stdout


@pytest.mark.parametrize(("source", "target"), [("local", "peer"), ("peer", "local")])
def test_ping_over_ipv4_both_ways(pair, source, target):
    result = run_in(ns(pair, source), "ping", "-4", "-n", "-c", "10", "-i", "0.2", "-W", "5",
                    str(v4(pair, target)), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 packets transmitted, 10 received, 0% packet loss" in result.stdout


def transfer(lab: Lab, address: str, family: socket.AddressFamily, port: int) -> tuple[str, str]:
    """TRANSFER_BYTES over TCP from the peer's namespace to the local one; the sha256 of both ends."""
    payload = os.urandom(TRANSFER_BYTES)
    ready = threading.Event()

    def serve() -> None:
        with inside(ns(lab, "peer")), socket.create_server((address, port), family=family) as server:
            ready.set()
            server.settimeout(60)
            connection, _ = server.accept()
            with connection:
                connection.sendall(payload)

    server = threading.Thread(target=serve)
    server.start()
    assert ready.wait(10)
    received = bytearray()
    with inside(ns(lab, "local")), socket.create_connection((address, port), timeout=60) as conn:
        while chunk := conn.recv(1 << 20):
            received += chunk
    server.join(timeout=10)
    return hashlib.sha256(received).hexdigest(), hashlib.sha256(payload).hexdigest()


def test_tcp_over_ipv4_arrives_intact(pair):
    got, sent = transfer(pair, str(v4(pair, "peer")), socket.AF_INET, 5004)
    assert got == sent


def test_udp_over_ipv4(pair):
    port = 5005
    ready = threading.Event()
    done = threading.Event()

    def echo() -> None:
        with inside(ns(pair, "peer")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((str(v4(pair, "peer")), port))
            sock.settimeout(0.2)
            ready.set()
            while not done.is_set():
                try:
                    data, sender = sock.recvfrom(65535)
                except TimeoutError:
                    continue
                sock.sendto(data, sender)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        with inside(ns(pair, "local")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(10)
            for size in (1, 512, 1400, 9000, 40000):
                payload = os.urandom(size)
                sock.sendto(payload, (str(v4(pair, "peer")), port))
                assert sock.recvfrom(65535)[0] == payload
    finally:
        done.set()
        thread.join(timeout=5)


def test_sealed_nodes_use_ipv4_addresses_from_the_peers_file(lab: Lab, tmp_path: Path):
    """The local node takes another IPv4 address (--address4), which the peer's file states in its table form."""
    local4 = "100.64.1.1"
    public = {role: encode_public_key(generate_key_file(tmp_path / f"{role}.key")) for role in ("local", "peer")}
    (tmp_path / "peer.toml").write_text(
        f'[peers."{lab.address("local")}"]\nkeys = ["{public["local"]}"]\naddress4 = "{local4}"\nname = "local"\n')
    (tmp_path / "local.toml").write_text(f'[peers]\n"{lab.address("peer")}" = "{public["peer"]}"\n')

    def flags(role: str) -> list[str]:
        return ["--key-file", str(tmp_path / f"{role}.key"), "--peers", str(tmp_path / f"{role}.toml")]

    local = lab.spawn_agent("local", *flags("local"), "--address4", local4)
    lab.spawn_agent("peer", *flags("peer"))
    result = run_in(ns(lab, "peer"), "ping", "-4", "-n", "-c", "5", "-i", "0.2", "-W", "5", local4, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + lab.agent_log(local)
    assert "5 packets transmitted, 5 received" in result.stdout
    assert wait_until(lambda: "Traceback" not in lab.agent_log(local), 1)
