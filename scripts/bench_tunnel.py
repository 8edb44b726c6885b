"""Measure the tunnel on the lab: ping RTT, TCP throughput, S3 requests per packet, idle cost, memory.

Run as root: `.venv/bin/python scripts/bench_tunnel.py` (or `make bench`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import threading
import time
from pathlib import Path

from agent.lab import Lab, run_in, traffic
from agent.netconf import inside

SAMPLE = re.compile(r'^(hoshino_[a-z0-9_]+_total)(?:\{[^}]*\})? ([0-9.e+]+)$', re.M)


def counters(lab: Lab, role: str) -> dict[str, float]:
    """Sum every hoshino counter of one node, read from its own metrics page inside its namespace."""
    with inside(lab.namespaces[role].name):
        page = traffic.fetch_metrics(lab.address(role))
    totals: dict[str, float] = {}
    for name, value in SAMPLE.findall(page):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def s3_requests(totals: dict[str, float]) -> float:
    return totals.get("hoshino_s3_read_operations_total", 0) + totals.get("hoshino_s3_write_operations_total", 0)


def both(lab: Lab) -> dict[str, float]:
    merged: dict[str, float] = {}
    for role in ("local", "peer"):
        for name, value in counters(lab, role).items():
            merged[name] = merged.get(name, 0.0) + value
    return merged


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tcp_transfer(lab: Lab, size: int) -> float:
    """Send size random bytes peer -> local over TCP; return seconds (checks the sha256)."""
    payload = os.urandom(size)
    ready = threading.Event()

    def serve() -> None:
        with inside(lab.namespaces["peer"].name), socket.create_server(
            (str(lab.peer_address), 5002), family=socket.AF_INET6
        ) as server:
            ready.set()
            connection, _ = server.accept()
            with connection:
                connection.sendall(payload)

    thread = threading.Thread(target=serve)
    thread.start()
    ready.wait(10)
    received = bytearray()
    started = time.monotonic()
    with inside(lab.namespaces["local"].name), socket.create_connection((str(lab.peer_address), 5002)) as conn:
        while chunk := conn.recv(1 << 20):
            received += chunk
    seconds = time.monotonic() - started
    thread.join()
    if hashlib.sha256(received).digest() != hashlib.sha256(payload).digest():
        raise SystemExit("TCP transfer corrupted")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--outage-seconds", type=float, default=60.0, help="how long S3 is down (0: skip)")
    args = parser.parse_args()
    with Lab() as lab:
        local = lab.spawn_agent("local")
        peer = lab.start_peer()
        time.sleep(2)

        before = both(lab)
        result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "20", "-i", "0.2",
                        str(lab.peer_address), timeout=120)
        after = both(lab)
        rtt = result.stdout.strip().splitlines()[-1]
        packets = after["hoshino_packets_egressed_total"] - before["hoshino_packets_egressed_total"]
        print(f"ping -c 20 -i 0.2: {rtt}")
        requests = s3_requests(after) - s3_requests(before)
        print(f"  S3 requests per packet (both nodes, ping): {requests / packets:.2f}")

        result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "10", "-i", "1",
                        str(lab.peer_address), timeout=120)
        print(f"ping -c 10 -i 1:   {result.stdout.strip().splitlines()[-1]}")

        for mebibytes in (5, 50):
            before = both(lab)
            seconds = tcp_transfer(lab, mebibytes << 20)
            after = both(lab)
            packets = after["hoshino_packets_egressed_total"] - before["hoshino_packets_egressed_total"]
            requests = s3_requests(after) - s3_requests(before)
            print(f"TCP {mebibytes} MiB peer->local: {seconds:.2f} s, {(mebibytes << 20) / seconds / 1e6:.2f} MB/s")
            lost = after.get("hoshino_dropped_packets_total", 0) - before.get("hoshino_dropped_packets_total", 0)
            print(f"  {packets:.0f} packets, {requests:.0f} S3 requests: {requests / packets:.2f} per packet;"
                  f" {lost:.0f} dropped")

        time.sleep(3)  # let the heartbeat settle back to idle
        before = counters(lab, "local")
        time.sleep(args.idle_seconds)
        after = counters(lab, "local")
        per_minute = (s3_requests(after) - s3_requests(before)) * 60 / args.idle_seconds
        print(f"idle: {per_minute:.0f} S3 requests per minute for one node (over {args.idle_seconds:.0f} s)")
        print(f"agent memory (RSS): local {rss_mib(local.pid):.0f} MiB, peer {rss_mib(peer.pid):.0f} MiB")

        if args.outage_seconds > 0:
            outage(lab, args.outage_seconds)
            alive = local.poll() is None and peer.poll() is None
            print(f"  both agents still running: {alive}")


def outage(lab: Lab, seconds: float) -> None:
    """Stop the S3 server for a while, start it again, and time how long until ping gets through."""
    assert lab.server.process is not None
    lab.server.process.terminate()
    lab.server.process.wait()
    time.sleep(seconds)
    lab.server.restart()
    lab.server.create_bucket(lab.bucket)
    back = time.monotonic()
    while time.monotonic() - back < 60:
        result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "1", "-W", "2",
                        str(lab.peer_address), timeout=10)
        if result.returncode == 0:
            print(f"S3 down for {seconds:.0f} s: ping gets through {time.monotonic() - back:.1f} s after it returns")
            return
    print(f"S3 down for {seconds:.0f} s: no ping through within 60 s of its return")


if __name__ == "__main__":
    main()
