"""What an exit node gives: a 20 MB fetch through it per family, against iperf3 between the same two nodes.

Run as root on the lab: `.venv/bin/python scripts/bench_exit.py [--rounds N] [--baseline REF] [--s3 seaweedfs]
[--tcp-congestion cubic]`. Two
sealed agents: the 'local' one an exit node whose uplink is a veth to an "internet" namespace on
documentation addresses, the 'peer' one a private node with --exit-node. Each round: iperf3 from the
private node to the exit node (10 s), and 20 MB the other way (-R -n: the direction and size of the
fetches), then curl of 20 MB over IPv4 and over IPv6 through it. Prints MB/s, the ratios to both
iperf3 runs, the mean size of the packets the exit node sent into the tunnel, and the
dollars per GB the two agents' requests cost for each fetch beside a NAT gateway's. With --baseline,
each round runs the exit node of that commit first, then this checkout's, in the same lab. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_tunnel import checkout  # scripts/, beside this one
from prometheus_client.parser import text_string_to_metric_families

from agent.lab import Lab, run_in, wait_until
from agent.lab.internet import Internet
from agent.lab.peers_files import RoutingKeys
from agent.lab.server import stop_process
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


def iperf(lab: Lab, seconds: int, download: int = 0) -> float:
    """MB/s iperf3 moves between the two nodes: from the private node to the exit node for `seconds`, or with
    download, that many bytes the other way, as a fetch through the exit node moves them."""
    server = subprocess.Popen(["ip", "netns", "exec", lab.namespaces["local"].name, "iperf3", "-s", "-1",
                               "-B", str(lab.address("local"))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ":5201" in run_in(lab.namespaces["local"].name, "ss", "-ltn").stdout, 10)
        how = ("-R", "-n", str(download)) if download else ("-t", str(seconds))
        result = run_in(lab.namespaces["peer"].name, "iperf3", "-6", "-J", *how, "-c",
                        str(lab.address("local")), timeout=seconds + 600)
        received = json.loads(result.stdout)["end"]["sum_received"]
        return float(received["bytes"]) / float(received["seconds"]) / 1e6
    finally:
        server.wait(timeout=30)


def sent_into_tunnel(lab: Lab) -> tuple[float, float]:
    """Bytes and packets the exit node has sent into the tunnel so far (every route)."""
    with inside(lab.namespaces["local"].name):
        page = fetch_metrics(lab.address("local"))
    totals = {"bytes": 0.0, "packets": 0.0}
    for family in text_string_to_metric_families(page):
        for kind in totals:
            if family.name == f"hoshino_route_{kind}":
                totals[kind] += sum(sample.value for sample in family.samples
                                    if sample.name.endswith("_total") and sample.labels.get("direction") == "out")
    return totals["bytes"], totals["packets"]


def fetch(lab: Lab, internet: Internet, family: int, into: Path) -> dict[str, float]:
    """One 20 MB curl through the exit node: its MB/s, the seconds to its first byte (the connection and the
    request cross the tunnel first) and the MB/s from then on (both speeds 0 unless it arrived whole), the
    dollars per GB it cost, and the mean size of the packets the exit node sent into the tunnel meanwhile."""
    before = dollars(lab)
    sent_before = sent_into_tunnel(lab)
    result = run_in(lab.namespaces["peer"].name, "curl", "-sS", "--speed-limit", "1", "--speed-time", "60",
                    "-o", str(into), "-w", "%{speed_download} %{time_starttransfer} %{time_total}",
                    internet.url(family), timeout=3600)
    intact = result.returncode == 0 and hashlib.sha256(into.read_bytes()).digest() == hashlib.sha256(
        internet.body).digest()
    time.sleep(1)  # the last deletes and counters settle
    cost = (dollars(lab) - before) / (len(internet.body) / GB)
    sent = [now - then for now, then in zip(sent_into_tunnel(lab), sent_before, strict=True)]
    speed, first_byte, total = (float(part) for part in (result.stdout.split() or ["0", "0", "0"]))
    streaming = len(internet.body) / max(total - first_byte, 1e-6) / 1e6 if intact else 0.0
    return {"speed": speed / 1e6 if intact else 0.0, "first_byte": first_byte, "streaming": streaming, "cost": cost,
            "size": sent[0] / max(sent[1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--iperf-seconds", type=int, default=10)
    parser.add_argument("--baseline", metavar="REF", help="also run the exit node of this commit (a git worktree)")
    parser.add_argument("--s3", choices=("moto", "seaweedfs"), default="moto",
                        help="the lab's S3 engine (default moto)")
    parser.add_argument("--wakeup", choices=("sqs", "poll"), default="sqs",
                        help="what wakes the two nodes: a doorbell (moto's SQS) or polling (default sqs)")
    parser.add_argument("--tcp-congestion", metavar="NAME",
                        help="the internet's servers' TCP congestion control, e.g. cubic (default: the system's)")
    args = parser.parse_args()
    nat = load_prices("aws-s3-standard").nat_gateway_per_gb
    with contextlib.ExitStack() as stack:
        runs: list[tuple[str, Path | None]] = []
        if args.baseline:
            baseline, commit = stack.enter_context(checkout(args.baseline))
            runs.append((f"{args.baseline} ({commit})", baseline))
        runs.append(("this checkout", None))
        lab = stack.enter_context(Lab(bucket=f"bench-exit-{secrets.token_hex(3)}", s3=args.s3, wakeup=args.wakeup))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        internet = Internet(lab.namespaces["local"].name, congestion=args.tcp_congestion)
        stack.callback(internet.close)
        congestion = args.tcp_congestion or run_in(internet.namespace.name, "sysctl", "-n",
                                                    "net.ipv4.tcp_congestion_control").stdout.strip()
        keys = RoutingKeys(directory, {"exit": lab.address("local"), "private": lab.address("peer")})
        keys.write_peers("exit", {"private": []})
        keys.write_peers("private", {"exit": ["0.0.0.0/0", "::/0"]})
        rows: dict[str, dict[str, list[float]]] = {name: {} for name, _ in runs}
        for _ in range(args.rounds):
            for name, code in runs:
                exit_node = lab.spawn_agent("local", *keys.flags("exit"), "--advertise-exit-node", code=code)
                private = lab.spawn_agent("peer", *keys.flags("private"), "--exit-node", str(lab.address("local")))
                row = rows[name]
                row.setdefault("iperf3", []).append(iperf(lab, args.iperf_seconds))
                row.setdefault("iperf3_down", []).append(iperf(lab, args.iperf_seconds, len(internet.body)))
                for family in (4, 6):
                    for figure, value in fetch(lab, internet, family, directory / "file").items():
                        row.setdefault(f"{figure}{family}", []).append(value)
                for process in (private, exit_node):
                    stop_process(process, timeout=30)
    print(f"S3 engine {args.s3}, woken by {args.wakeup}; the internet's servers send with TCP {congestion}")
    for name, _ in runs:
        median = {key: statistics.median(values) for key, values in rows[name].items()}
        print(f"exit node of {name} (medians of {args.rounds}): iperf3 between the two nodes, private to exit "
              f"for {args.iperf_seconds} s {median['iperf3']:.2f} MB/s; exit to private, 20 MB as a fetch moves it, "
              f"{median['iperf3_down']:.2f} MB/s")
        for family in (4, 6):
            speed = median[f"speed{family}"]
            print(f"  20 MB through the exit node over IPv{family}: {speed:.2f} MB/s ({speed / median['iperf3']:.2f} "
                  f"x iperf3 up, {speed / median['iperf3_down']:.2f} x down); first byte after "
                  f"{median[f'first_byte{family}']:.2f} s, {median[f'streaming{family}']:.2f} MB/s from then on; "
                  f"packets into the tunnel "
                  f"{median[f'size{family}']:,.0f} bytes on average, "
                  f"${median[f'cost{family}']:.3f} per GB in requests (NAT gateway: ${nat:.3f} per GB plus $0.045 an "
                  f"hour)")
    print(f"load average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
