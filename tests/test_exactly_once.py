"""Exactly once, end to end: no packet delivered twice under load or across a restart, none lost by a clean one."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sealed_tunnel import PORT, Keys, Listener, put

from agent import wire
from agent.lab import Lab, run_in, wait_until
from agent.lab import traffic as lab_traffic
from agent.netconf import inside

pytestmark = pytest.mark.root
PINGS = int(os.environ.get("HOSHINO_PINGS", "1000"))
"""Pings at 50 a second in each mode: a few thousand in CI; HOSHINO_PINGS=10000 for the full count."""


def counter(lab: Lab, role: str, name: str) -> float:
    """One counter of a node's metrics page, summed over its labels."""
    with inside(lab.namespaces[role].name):
        page = lab_traffic.fetch_metrics(lab.address(role))
    return sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
               if line.startswith(name) and line[len(name)] in " {")


def ping(lab: Lab, source: str, count: int, interval: float) -> str:
    target = lab.address("peer" if source == "local" else "local")
    result = run_in(lab.namespaces[source].name, "ping", "-6", "-n", "-q", "-c", str(count), "-i", str(interval),
                    "-W", "5", str(target), timeout=2 * count * interval + 120)  # a loaded machine sends slower
    return result.stdout + result.stderr


def received(output: str) -> int:
    match = re.search(r"(\d+) received", output)
    return int(match.group(1)) if match else 0


@pytest.fixture(params=["poll", "sqs"])
def wakeup(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["unsealed", "sealed"])
def nodes(request: pytest.FixtureRequest, wakeup: str, tmp_path: Path) -> Iterator[tuple[Lab, list[str], list[str]]]:
    """Two agents of the lab in the given wake-up mode, sealed or not; the flags each was started with."""
    with Lab(bucket=f"lab-{secrets.token_hex(4)}", wakeup=wakeup) as lab:
        local: list[str] = []
        peer: list[str] = []
        if request.param == "sealed":
            keys = Keys(tmp_path, lab)
            local, peer = keys.flags("local"), keys.flags("peer")
        lab.spawn_agent("local", *local)
        lab.start_peer(*peer)
        yield lab, local, peer


def test_pings_under_load_arrive_exactly_once(nodes):
    """A duplicate slipped through two polling nodes at 50 pings a second: a listing landed between a
    key's delivery and its being recorded as handled. Every count must match, exactly."""
    lab, _, _ = nodes
    output = ping(lab, "local", PINGS, 0.02)
    assert "DUP!" not in output and "duplicates" not in output, output
    assert received(output) >= PINGS * 0.99, output

    def balanced() -> bool:
        return (counter(lab, "local", "hoshino_packets_egressed_total")
                == counter(lab, "peer", "hoshino_packets_ingressed_total")
                and counter(lab, "peer", "hoshino_packets_egressed_total")
                == counter(lab, "local", "hoshino_packets_ingressed_total"))

    assert wait_until(balanced, 20, step=0.5), {
        (role, name): counter(lab, role, f"hoshino_packets_{name}_total")
        for role in ("local", "peer") for name in ("egressed", "ingressed")}
    assert counter(lab, "local", "hoshino_dropped_packets_total") == 0
    assert counter(lab, "peer", "hoshino_dropped_packets_total") == 0
    print(f"{PINGS} pings: {received(output)} answered, no duplicate; egressed = ingressed each way: "
          f"{counter(lab, 'local', 'hoshino_packets_egressed_total'):.0f} and "
          f"{counter(lab, 'peer', 'hoshino_packets_egressed_total'):.0f}")


def listed(lab: Lab) -> list[str]:
    return [item["Key"] for item in lab.server.client().list_objects_v2(Bucket=lab.bucket).get("Contents", [])]


def stale(key: str) -> bool:
    """Whether a key's stamp is older than the window a node accepts (--max-age 10 s and 2 s either way)."""
    return time.time() - wire.parse_key(key).timestamp > 12


def restart_local(lab: Lab, how: signal.Signals, flags: list[str]) -> None:
    agent = lab.agents[0]
    agent.send_signal(how)
    agent.wait(20)
    lab.agents[0] = lab.spawn_agent("local", *flags)
    lab.agents.pop()  # spawn_agent appended it as well


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_capture_put_again_after_a_restart_is_never_delivered(nodes, how):
    """A restarted node delivered a captured object PUT again: what it delivered lived in the process only."""
    lab, local_flags, _ = nodes
    listener = Listener(lab, any_address=True)
    try:
        agent = lab.agents[0]
        agent.send_signal(signal.SIGSTOP)  # the local node stops listening: what is PUT for it stays
        try:
            with inside(lab.namespaces["peer"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"once", (str(lab.local_address), PORT))
            assert wait_until(lambda: listed(lab), 30)
            (key,) = listed(lab)
            captured = lab.server.client().get_object(Bucket=lab.bucket, Key=key)["Body"].read()
        finally:
            agent.send_signal(signal.SIGCONT)
        assert wait_until(lambda: listener.received == [b"once"], 30)
        assert wait_until(lambda: not listed(lab), 30)  # delivered, then deleted

        restart_local(lab, how, local_flags)
        put(lab, key, captured)  # replayed under its own key, doorbell rung
        if local_flags:  # sealed: under a fresh key it does not open (the key is bound in)
            put(lab, key[:-26] + key[-26:-1] + ("0" if key[-1] != "0" else "1"), captured)
        # Handled (deleted), or by now older than the window: then they lie below the listing, refused as
        # stale by the next sweep, and a sealed node does not fetch for the attacker's unproven bells.
        assert wait_until(lambda: all(stale(left) for left in listed(lab)), 30), listed(lab)
        # A datagram sent after the replays arrives, and it alone: neither replay reached the kernel.
        with inside(lab.namespaces["peer"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"after", (str(lab.local_address), PORT))
        assert wait_until(lambda: b"after" in listener.received, 30), listener.received
        assert listener.received == [b"once", b"after"]
    finally:
        listener.close()


def test_datagrams_across_a_clean_restart_all_arrive_once(nodes):
    """The receiver stops (SIGTERM) and starts again within the max age while a datagram is sent every
    100 ms: what was sent meanwhile waits in the bucket and is delivered then; none lost, none twice."""
    lab, local_flags, _ = nodes
    listener = Listener(lab, any_address=True)
    sent: list[bytes] = []

    def send(stop: threading.Event) -> None:
        with inside(lab.namespaces["peer"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            for n in range(60):
                if stop.is_set():
                    return
                message = f"datagram {n}".encode()
                try:
                    sock.sendto(message, (str(lab.local_address), PORT))
                except OSError:
                    continue  # not sent (the peer's device is busy): not expected either
                sent.append(message)
                stop.wait(0.1)

    stop = threading.Event()
    sender = threading.Thread(target=send, args=(stop,), daemon=True)
    try:
        sender.start()
        assert wait_until(lambda: len(listener.received) >= 10, 20)
        restart_local(lab, signal.SIGTERM, local_flags)
        sender.join(60)
        assert wait_until(lambda: len(listener.received) >= len(sent), 30), (len(sent), len(listener.received))
        assert sorted(listener.received) == sorted(sent)
    finally:
        stop.set()
        listener.close()


def test_a_node_restarted_after_a_kill_hears_its_first_bells():
    """A node killed in its long poll left that poll open at the queue: the first bell rung for its successor went
    to the dead poll, hidden for the visibility timeout, by when its object was stale, and the datagram was
    lost. The successor's first act on its queue ends that poll."""
    with Lab(bucket=f"lab-{secrets.token_hex(4)}", wakeup="sqs") as lab:
        lab.spawn_agent("local")
        lab.start_peer()
        listener = Listener(lab, any_address=True)
        try:
            def send(data: bytes) -> None:
                with inside(lab.namespaces["peer"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                    sock.sendto(data, (str(lab.local_address), PORT))

            send(b"before")
            assert wait_until(lambda: listener.received == [b"before"], 30)
            time.sleep(3)  # idle: the local node waits in its long poll
            restart_local(lab, signal.SIGKILL, [])
            time.sleep(3)  # past its first listing: from here on only a bell tells it of an object
            send(b"after")
            assert wait_until(lambda: listener.received == [b"before", b"after"], 10), listener.received
        finally:
            listener.close()
