"""A bell flood under ping: what a node's doorbell costs it when anyone allowed to ring rings in numbers.

The peer pings the local node 5 times a second; after a baseline, 10 messages of 900 bells each for
keys that were never PUT are rung into the local node's queue while the ping goes on. The figures:
ping before and during, the local node's GETs, and what it counted. Shared by the end-to-end test
(tests/test_bell_flood.py) and scripts/bench_bell_flood.py, which also runs another commit's agents.
"""

from __future__ import annotations

import re
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.lab.hostile import ring_flood
from agent.lab.namespaces import run_in
from agent.lab.nodes import Lab, wait_until
from agent.lab.traffic import fetch_metrics
from agent.netconf import inside

PING_REPLY = re.compile(r"icmp_seq=(\d+) .*time=([0-9.]+) ms(?! \(DUP)")
PING_TOTALS = re.compile(r"(\d+) packets transmitted, (\d+) received")
SAMPLE = re.compile(r'^(hoshino_[a-z0-9_]+)(?:\{[a-z]+="([^"]*)"\})? ([0-9.e+-]+)$', re.MULTILINE)
PING_INTERVAL = 0.2


@dataclass
class PingFigures:
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.rtts) if self.rtts else float("nan")

    @property
    def max(self) -> float:
        return max(self.rtts, default=float("nan"))

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def __str__(self) -> str:
        return f"p50 {self.p50:.1f} ms, max {self.max:.1f} ms, {self.lost} of {self.sent} lost"


@dataclass
class FloodFigures:
    """What one flood did to the local node."""

    baseline: PingFigures
    during: PingFigures
    rung: int
    gets: float
    """GETs the local node made from the flood's start until it was over."""
    delivered_objects: float
    """Packets it delivered meanwhile (one per ping's object): the GETs the pings needed."""
    counted: dict[str, float]
    """Reasons it counted meanwhile, dropped and ignored, that moved."""
    warned: bool

    @property
    def fake_gets(self) -> float:
        """GETs beyond one per packet delivered: the fake bells' at most (a recheck or a retry counts too)."""
        return max(0.0, self.gets - self.delivered_objects)

    def report(self) -> str:
        counted = ", ".join(f"{reason} {count:.0f}" for reason, count in sorted(self.counted.items())) or "nothing"
        return (f"ping before: {self.baseline}\nping during the flood of {self.rung} bells: {self.during}\n"
                f"GETs meanwhile: {self.gets:.0f} ({self.delivered_objects:.0f} packets delivered: "
                f"{self.fake_gets:.0f} more GETs than packets)\ncounted: {counted}\nwarned of a flood: {self.warned}")


def ping(lab: Lab, count: int) -> PingFigures:
    """ping -6 from the peer's namespace to the local node, 5 a second."""
    result = run_in(lab.namespaces["peer"].name, "ping", "-6", "-n", "-c", str(count), "-i", f"{PING_INTERVAL:g}",
                    "-W", "5", str(lab.local_address), timeout=count * PING_INTERVAL + 60)
    totals = PING_TOTALS.search(result.stdout)
    rtts = [float(ms) for _, ms in PING_REPLY.findall(result.stdout)]
    return PingFigures(int(totals.group(1)) if totals else count, int(totals.group(2)) if totals else len(rtts), rtts)


def counters(lab: Lab) -> dict[str, float]:
    """The local node's counters: 'name' or 'name/label' -> value."""
    with inside(lab.namespaces["local"].name):
        page = fetch_metrics(lab.local_address)
    return {f"{name}/{label}" if label else name: float(value) for name, label, value in SAMPLE.findall(page)}


def bell_flood(lab: Lab, log: Callable[[], str], messages: int = 10, bells: int = 900,
               baseline_pings: int = 25, flood_pings: int = 50) -> FloodFigures:
    """Ping, then ping again while the flood is rung (a second in); log() gives the local agent's log."""
    ping(lab, 3)  # the route and the first listings settle
    baseline = ping(lab, baseline_pings)
    before = counters(lab)
    during: list[PingFigures] = []
    pinger = threading.Thread(target=lambda: during.append(ping(lab, flood_pings)), daemon=True)
    pinger.start()
    delivered = before.get("hoshino_packets_ingressed_total", 0.0)
    wait_until(lambda: counters(lab).get("hoshino_packets_ingressed_total", 0.0) >= delivered + 3, 10, step=0.1)
    rung = ring_flood(lab.sqs, lab.local_address, messages, bells)
    pinger.join(flood_pings * PING_INTERVAL + 90)
    after = counters(lab)
    moved = {name: after[name] - before.get(name, 0.0) for name in after}
    counted = {name.split("/", 1)[1]: value for name, value in moved.items()
               if value and name.startswith(("hoshino_dropped_packets_total/", "hoshino_ignored_packets_total/"))}
    return FloodFigures(baseline, during[0] if during else PingFigures(flood_pings), rung,
                        moved.get("hoshino_s3_read_operations_total/get", 0.0),
                        moved.get("hoshino_packets_ingressed_total", 0.0), counted, "bell flood" in log())
