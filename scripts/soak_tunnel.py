"""Soak the tunnel: back-to-back iperf3 runs through two lab agents for minutes, watching their memory.

Run as root: `.venv/bin/python scripts/soak_tunnel.py [--minutes 10] [-- AGENT FLAGS...]`. Prints, per
minute, the throughput and each agent's resident memory and CPU; the memory must stay flat (no
growth from one minute to the next beyond noise) and under 100 MiB. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_tunnel import IPERF_PORT, MB, SealedVariant, Variant, cpu_seconds, iperf_server, rss_mib

from agent.lab import Lab, run_in


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the per-minute figures here")
    parser.add_argument("--sealed", action="store_true", help="seal: a key pair per node, made for the run")
    parser.add_argument("agent_flags", nargs=argparse.REMAINDER, help="flags for both agents, after --")
    args = parser.parse_args()
    flags = tuple(flag for flag in args.agent_flags if flag != "--")
    variant = (SealedVariant if args.sealed else Variant)("soak", args=flags)
    minutes: list[dict[str, float]] = []
    with Lab(bucket="hoshino-soak") as lab:
        agents = {"local": lab.spawn_agent("local", *variant.prepare(lab, "local")),
                  "peer": lab.start_peer(*variant.prepare(lab, "peer"))}
        time.sleep(2)
        for minute in range(int(args.minutes)):
            cpu_before = {role: cpu_seconds(process.pid) for role, process in agents.items()}
            with iperf_server(lab, IPERF_PORT):
                result = run_in(lab.namespaces["local"].name, "iperf3", "-6", "-J", "-c", str(lab.peer_address),
                                "-p", str(IPERF_PORT), "-t", "60", "--connect-timeout", "10000", timeout=150)
            received = json.loads(result.stdout)["end"]["sum_received"]
            moved = received["bytes"] / MB
            row = {"minute": minute + 1, "mb_s": moved / received["seconds"]}
            for role, process in agents.items():
                row[f"rss_mib_{role}"] = rss_mib(process.pid)
                row[f"cpu_s_per_mb_{role}"] = (cpu_seconds(process.pid) - cpu_before[role]) / moved
            minutes.append(row)
            print(f"minute {row['minute']:2.0f}: {row['mb_s']:5.2f} MB/s; RSS local {row['rss_mib_local']:5.1f} MiB,"
                  f" peer {row['rss_mib_peer']:5.1f} MiB; CPU s/MB local {row['cpu_s_per_mb_local']:.3f},"
                  f" peer {row['cpu_s_per_mb_peer']:.3f}", flush=True)
    variant.close()
    for role in ("local", "peer"):
        rss = [row[f"rss_mib_{role}"] for row in minutes]
        print(f"{role}: RSS min {min(rss):.1f}, max {max(rss):.1f}, first {rss[0]:.1f}, last {rss[-1]:.1f} MiB")
    print(f"throughput median {statistics.median(row['mb_s'] for row in minutes):.2f} MB/s")
    if args.json:
        args.json.write_text(json.dumps(minutes, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
