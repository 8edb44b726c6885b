"""What an exit node gives: a 20 MB fetch through it per family, against iperf3 between the same two nodes.

Run as root on the lab: `.venv/bin/python scripts/bench_exit.py [--rounds N]`. Two sealed agents: the
'local' one an exit node whose uplink is a veth to an "internet" namespace on documentation
addresses, the 'peer' one a private node with --exit-node. Each round: iperf3 from the private node
to the exit node (10 s), then curl of 20 MB over IPv4 and over IPv6 through it. Prints MB/s, the ratio
to iperf3, and the dollars per GB the two agents' requests cost for each fetch beside a NAT gateway's.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent.lab import Lab, run_in, wait_until
from agent.lab.internet import Internet
from agent.lab.peers_files import RoutingKeys
from agent.lab.traffic import fetch_metrics
from agent.netconf import inside
from agent.prices import load_prices

GB = 1e9


def dollars(lab: Lab) -> float:
    """What both agents' requests cost so far, by their own estimate."""
    total = 0.0
    for role in ("local", "peer"):
        with inside(lab.namespaces[role].name):
            page = fetch_metrics(lab.address(role))
        for family in text_string_to_metric_families(page):
            if family.name == "hoshino_estimated_cost_dollars":
                total += sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return total


def iperf(lab: Lab, seconds: int) -> float:
    """MB/s received by the exit node from the private node, by iperf3."""
    server = subprocess.Popen(["ip", "netns", "exec", lab.namespaces["local"].name, "iperf3", "-s", "-1",
                               "-B", str(lab.address("local"))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ":5201" in run_in(lab.namespaces["local"].name, "ss", "-ltn").stdout, 10)
        result = run_in(lab.namespaces["peer"].name, "iperf3", "-6", "-J", "-t", str(seconds), "-c",
                        str(lab.address("local")), timeout=seconds + 60)
        received = json.loads(result.stdout)["end"]["sum_received"]
        return float(received["bytes"]) / float(received["seconds"]) / 1e6
    finally:
        server.wait(timeout=30)


def fetch(lab: Lab, internet: Internet, family: int, into: Path) -> tuple[float, float, bool]:
    """MB/s of one 20 MB curl through the exit node, the dollars per GB it cost, and whether it arrived whole."""
    before = dollars(lab)
    result = run_in(lab.namespaces["peer"].name, "curl", "-sS", "--speed-limit", "1", "--speed-time", "60",
                    "-o", str(into), "-w", "%{speed_download}", internet.url(family), timeout=3600)
    intact = result.returncode == 0 and hashlib.sha256(into.read_bytes()).digest() == hashlib.sha256(
        internet.body).digest()
    time.sleep(1)  # the last deletes and counters settle
    cost = (dollars(lab) - before) / (len(internet.body) / GB)
    return float(result.stdout or 0) / 1e6, cost, intact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--iperf-seconds", type=int, default=10)
    args = parser.parse_args()
    nat = load_prices("aws-s3-standard").nat_gateway_per_gb
    rows: dict[str, list[float]] = {"iperf3": [], "curl4": [], "curl6": [], "cost4": [], "cost6": []}
    with Lab(bucket=f"bench-exit-{secrets.token_hex(3)}") as lab, tempfile.TemporaryDirectory() as directory:
        internet = Internet(lab.namespaces["local"].name)
        try:
            keys = RoutingKeys(Path(directory), {"exit": lab.address("local"), "private": lab.address("peer")})
            keys.write_peers("exit", {"private": []})
            keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
            lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node")
            lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")))
            for _ in range(args.rounds):
                rows["iperf3"].append(iperf(lab, args.iperf_seconds))
                for family in (4, 6):
                    speed, cost, intact = fetch(lab, internet, family, Path(directory) / "file")
                    rows[f"curl{family}"].append(speed if intact else 0.0)
                    rows[f"cost{family}"].append(cost)
        finally:
            internet.close()
    iperf3 = statistics.median(rows["iperf3"])
    print(f"iperf3 between the two nodes: {iperf3:.2f} MB/s (median of {args.rounds})")
    for family in (4, 6):
        speed, cost = statistics.median(rows[f"curl{family}"]), statistics.median(rows[f"cost{family}"])
        print(f"20 MB through the exit node over IPv{family}: {speed:.2f} MB/s ({speed / iperf3:.2f} x iperf3), "
              f"${cost:.3f} per GB in requests (NAT gateway: ${nat:.3f} per GB plus $0.045 an hour)")


if __name__ == "__main__":
    main()
