"""A node whose clock is off: an agent under libfaketime (Debian's faketime), and what pings across it show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent.lab.namespaces import run_in
from agent.lab.nodes import Lab
from agent.lab.server import LabError
from agent.lab.traffic import fetch_metrics
from agent.netconf import inside

LIBRARIES = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
             "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
             "/usr/lib/faketime/libfaketimeMT.so.1")
PING_TOTALS = re.compile(r"(\d+) packets transmitted, (\d+) received")


def skewed_clock(offset: float) -> dict[str, str]:
    """Environment that runs a process with its wall clock `offset` seconds off (its monotonic clock untouched)."""
    library = next((path for path in LIBRARIES if Path(path).exists()), None)
    if library is None:
        raise LabError("libfaketime is missing: install Debian's faketime (scripts/install-system-packages)")
    return {"LD_PRELOAD": library, "FAKETIME": f"{offset:+g}s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def ping(lab: Lab, source: str, count: int, interval: float = 0.2, wait: float = 3.0) -> int:
    """Pings from the node of role `source` to the other one; how many were answered."""
    target = lab.address("peer" if source == "local" else "local")
    result = run_in(lab.namespaces[source].name, "ping", "-n", "-q", "-c", str(count), "-i", str(interval),
                    "-W", str(wait), str(target), timeout=count * interval + wait + 30)
    totals = PING_TOTALS.search(result.stdout)
    return int(totals.group(2)) if totals else 0


@dataclass(frozen=True, slots=True)
class NodeView:
    """What one node says: its clock's offset from the bucket's, and what it dropped as stale or future."""

    offset: float | None
    stale: int
    future: int
    dropped: dict[str, int]
    """Every reason it dropped for, with how many."""
    delivered: int
    """Packets it delivered to its device."""


def node_view(lab: Lab, role: str) -> NodeView:
    """Read a node's metrics page from inside its namespace."""
    with inside(lab.namespaces[role].name):
        page = fetch_metrics(lab.address(role))
    offset: float | None = None
    dropped: dict[str, int] = {}
    delivered = 0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "hoshino_clock_offset_seconds":
                offset = sample.value
            elif sample.name == "hoshino_dropped_packets_total":
                dropped[sample.labels.get("reason", "")] = int(sample.value)
            elif sample.name == "hoshino_packets_ingressed_total":
                delivered = int(sample.value)
    return NodeView(offset, dropped.get("stale", 0), dropped.get("future", 0), dropped, delivered)
