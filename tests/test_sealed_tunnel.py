"""Two sealed agents in namespaces: traffic flows, every attack of a writer to the bucket is dropped with its
reason, and keys rotate and reload without a restart."""

from __future__ import annotations

import ipaddress
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest
import ulid
from packets_factory import ip6

from agent import wire
from agent.lab import Lab, run_in, wait_until
from agent.lab import traffic as lab_traffic
from agent.lab.hostile import plant
from agent.netconf import inside
from agent.sealing import Peers, Sealer, encode_public_key, generate_key_file, load_private_key

pytestmark = pytest.mark.root
PORT = 9999
MEMBER = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::c")
"""A third member's address, which the peer may try to speak for."""


class Keys:
    """Key files and peers files for the lab's two nodes, in a directory of the test's."""

    def __init__(self, directory: Path, lab: Lab) -> None:
        self.directory = directory
        self.lab = lab
        self.public = {role: encode_public_key(generate_key_file(directory / f"{role}.key"))
                       for role in ("local", "peer")}
        for role, other in (("local", "peer"), ("peer", "local")):
            self.write_peers(role, {lab.address(other): [self.public[other]]})

    def write_peers(self, role: str, peers: dict[ipaddress.IPv6Address, list[str]]) -> None:
        lines = ["[peers]"] + [f'"{address}" = [{", ".join(f"{key!r}" for key in keys)}]'
                               for address, keys in peers.items()]
        (self.directory / f"{role}.toml").write_text("\n".join(lines).replace("'", '"') + "\n")

    def flags(self, role: str, key: str | None = None) -> list[str]:
        directory = self.directory
        return ["--key-file", str(directory / f"{key or role}.key"), "--peers", str(directory / f"{role}.toml")]

    def sealer(self, key: str, address: ipaddress.IPv6Address, peers_of: str) -> Sealer:
        """A sealer holding the private key `key`, speaking as address, with the peers file of peers_of."""
        directory = self.directory
        return Sealer(load_private_key(directory / f"{key}.key"), address, Peers(directory / f"{peers_of}.toml"))


@pytest.fixture
def sealed(lab: Lab, tmp_path: Path) -> Iterator[tuple[Lab, Keys]]:
    keys = Keys(tmp_path, lab)
    lab.spawn_agent("local", *keys.flags("local"))
    lab.start_peer(*keys.flags("peer"))
    yield lab, keys


class Listener:
    """A UDP socket in the local namespace: the payloads the kernel hands it are what the tunnel delivered.

    any_address: bound to '::' rather than the node's address, so it outlives the agent's device (a restart)."""

    def __init__(self, lab: Lab, any_address: bool = False) -> None:
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        address = "::" if any_address else str(lab.local_address)
        self._thread = threading.Thread(target=self._run, args=(lab, address), daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _run(self, lab: Lab, address: str) -> None:
        with inside(lab.namespaces["local"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind((address, PORT))
            self._ready.set()
            while not self._stop.is_set():
                if select.select([sock], [], [], 0.1)[0]:
                    self.received.append(sock.recv(65535))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def datagram(source: ipaddress.IPv6Address, lab: Lab, text: bytes) -> bytes:
    """A UDP datagram to the listener (dpkt fills in the checksum)."""
    segment = dpkt.udp.UDP(sport=5555, dport=PORT, data=text)
    segment.ulen = 8 + len(text)
    return ip6(source, lab.local_address, segment, dpkt.ip.IP_PROTO_UDP)


def dropped(lab: Lab, counter: str = "hoshino_dropped_packets_total") -> dict[str, float]:
    """The local node's counts by reason, of dropped packets or of another counter labelled by reason."""
    with inside(lab.namespaces["local"].name):
        page = lab_traffic.fetch_metrics(lab.local_address)
    counts = {}
    for line in page.splitlines():
        if line.startswith(counter + "{"):
            counts[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return counts


def key_now(lab: Lab, seconds_ago: float = 0.0) -> str:
    stamp = ulid.ULID.from_timestamp(time.time() - seconds_ago)
    return f"{wire.inbox('', lab.local_address)}{stamp}"


def put(lab: Lab, key: str, body: bytes) -> None:
    """What an attacker with write access does: PUT, and ring the doorbell."""
    plant(lab.server, lab.sqs, lab.bucket, key, body, lab.local_address)


@pytest.mark.engines
def test_sealed_nodes_carry_ping_and_the_bucket_sees_only_ciphertext(sealed):
    lab, _ = sealed
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "10", "-i", "0.2", "-W", "5",
                    "-p", "686f7368696e6f21", str(lab.peer_address), timeout=60)  # "hoshino!" as the pattern
    assert "10 packets transmitted, 10 received" in result.stdout, result.stdout + result.stderr
    agent = lab.agents[0]
    agent.send_signal(signal.SIGSTOP)  # the local node stops listening: what is PUT for it stays
    try:
        run_in(lab.namespaces["peer"].name, "ping", "-6", "-n", "-c", "2", "-W", "1", "-p", "686f7368696e6f21",
               str(lab.local_address), timeout=30)
        bodies = [lab.server.client().get_object(Bucket=lab.bucket, Key=item["Key"])["Body"].read()
                  for item in lab.server.client().list_objects_v2(Bucket=lab.bucket).get("Contents", [])]
    finally:
        agent.send_signal(signal.SIGCONT)
    assert bodies and all(body.startswith(wire.SEALED_MAGIC) for body in bodies)
    assert not any(b"hoshino!" in body for body in bodies)  # the payload is not in the clear


@pytest.mark.engines
def test_every_attack_is_dropped_with_its_reason_and_the_genuine_object_still_arrives(sealed):
    lab, keys = sealed
    listener = Listener(lab)
    try:
        peer_sealer = keys.sealer("peer", lab.peer_address, "peer")
        stranger = keys.directory / "stranger.key"
        generate_key_file(stranger)
        stranger_sealer = Sealer(load_private_key(stranger), lab.peer_address, Peers(keys.directory / "peer.toml"))
        genuine = datagram(lab.peer_address, lab, b"genuine")

        attacks: list[tuple[str, str, bytes]] = []
        # Unsealed: a datagram PUT by hand with the peer's source, as anyone could before sealing.
        attacks.append(("unsealed", key_now(lab), datagram(lab.peer_address, lab, b"unsealed")))
        # Forged: sealed by the peer, then one byte of the ciphertext changed.
        key = key_now(lab)
        forged = bytearray(peer_sealer.seal(key, datagram(lab.peer_address, lab, b"forged")))
        forged[-1] ^= 1
        attacks.append(("forged", key, bytes(forged)))
        # Unknown sender: a key nobody listed, claiming to be the peer.
        key = key_now(lab)
        attacks.append(("unknown_sender", key, stranger_sealer.seal(key, datagram(lab.peer_address, lab, b"who"))))
        # Relocated: a genuine object copied under another key (a new ULID: also a replay under a new key).
        moved = peer_sealer.seal(key_now(lab), datagram(lab.peer_address, lab, b"relocated"))
        attacks.append(("relocated", key_now(lab), moved))
        # Spoofed by a member: the peer's own key, another member's source address inside.
        key = key_now(lab)
        attacks.append(("spoofed_source", key, peer_sealer.seal(key, datagram(MEMBER, lab, b"spoofed"))))
        # Stale: genuine, but sealed a minute ago.
        key = key_now(lab, seconds_ago=60)
        attacks.append(("stale", key, peer_sealer.seal(key, datagram(lab.peer_address, lab, b"stale"))))

        before = dropped(lab)
        for _, key, body in attacks:
            put(lab, key, body)
        key = key_now(lab)
        genuine_body = peer_sealer.seal(key, genuine)
        put(lab, key, genuine_body)
        assert wait_until(lambda: b"genuine" in listener.received, 15), str(sorted(dropped(lab).items()))
        expected = {reason: before.get(reason, 0) + 1 for reason, _, _ in attacks if reason != "stale"}
        assert wait_until(lambda: all(dropped(lab).get(r, 0) >= n for r, n in expected.items()), 15), dropped(lab)

        # Replayed under the same key, once the genuine object was delivered and deleted.
        listed = lambda: [item["Key"] for item in  # noqa: E731
                          lab.server.client().list_objects_v2(Bucket=lab.bucket).get("Contents", [])]
        assert wait_until(lambda: key not in listed(), 10)
        put(lab, key, genuine_body)
        assert wait_until(lambda: dropped(lab).get("replayed", 0) >= before.get("replayed", 0) + 1, 15)
        time.sleep(1)
        assert listener.received == [b"genuine"]  # delivered once; no attack reached the kernel
        # The stale one lies below the listing window: the sweep (once a minute) refuses it; it is never delivered.
    finally:
        listener.close()


def test_a_member_cannot_speak_for_another_through_its_own_agent(sealed):
    """The local node's kernel holds a second address (another member's): what it sends from there is
    refused by the local agent before it is sealed or PUT, while its own traffic still flows."""
    lab, _ = sealed
    namespace = lab.namespaces["local"].name
    added = run_in(namespace, "ip", "-6", "addr", "add", f"{MEMBER}/128", "dev", "hoshino0", "nodad")
    assert added.returncode == 0, added.stderr
    refused = lambda: dropped(lab, "hoshino_ignored_packets_total").get("foreign_source", 0)  # noqa: E731
    before = refused()
    with inside(namespace), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind((str(MEMBER), 0))
        for n in range(3):
            sock.sendto(f"as {MEMBER} {n}".encode(), (str(lab.peer_address), 7))
    assert wait_until(lambda: refused() >= before + 3, 10), dropped(lab, "hoshino_ignored_packets_total")
    result = run_in(namespace, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "5", str(lab.peer_address),
                    timeout=60)
    assert "3 packets transmitted, 3 received" in result.stdout, result.stdout


def test_keys_rotate_and_the_peers_file_reloads_without_a_restart(sealed, tmp_path):
    lab, keys = sealed
    local = lab.agents[0]
    new_public = encode_public_key(generate_key_file(keys.directory / "peer-new.key"))
    # Rotation, step one: the local node accepts both of the peer's keys; SIGHUP reloads, no restart.
    keys.write_peers("local", {lab.peer_address: [keys.public["peer"], new_public]})
    local.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "peers file reloaded: 1 peer" in lab.agent_log(local), 10)
    # Step two: the peer restarts with its new key first in its key file and the retired one after it, so
    # it opens what the local node still seals to the old key; the local node never restarts, and it is
    # the one that speaks first (the peer could be a server that never does).
    peer = lab.agents[1]
    peer.send_signal(signal.SIGTERM)
    peer.wait(20)
    rotating = keys.directory / "peer-rotating.key"
    rotating.write_bytes((keys.directory / "peer-new.key").read_bytes() + (keys.directory / "peer.key").read_bytes())
    rotating.chmod(0o600)
    lab.spawn_agent("peer", *keys.flags("peer", key="peer-rotating"))
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "5",
                    str(lab.peer_address), timeout=60)
    assert "5 packets transmitted, 5 received" in result.stdout, result.stdout + lab.agent_log(local)
    # Step three: the old key is struck off; an object sealed with it is refused from then on.
    keys.write_peers("local", {lab.peer_address: [new_public]})
    local.send_signal(signal.SIGHUP)
    assert wait_until(lambda: lab.agent_log(local).count("peers file reloaded: 1 peer") == 2, 10)
    before = dropped(lab).get("unknown_sender", 0)
    key = key_now(lab)
    put(lab, key, keys.sealer("peer", lab.peer_address, "peer").seal(key, datagram(lab.peer_address, lab, b"old")))
    assert wait_until(lambda: dropped(lab).get("unknown_sender", 0) == before + 1, 15)
    # A broken peers file keeps the peers that were there.
    (keys.directory / "local.toml").write_text("[peers]\nnot toml at all = = =\n")
    local.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "peers file not reloaded, the old peers stay" in lab.agent_log(local), 10)
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "5",
                    str(lab.peer_address), timeout=60)
    assert "3 packets transmitted, 3 received" in result.stdout
    assert local.poll() is None
