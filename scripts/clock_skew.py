"""Pings from a node whose clock is off to one whose clock is good, and what each side sees.

Run as root on the lab: `.venv/bin/python scripts/clock_skew.py` (offsets +5 s and -15 s by default;
`--offsets 5,-15,90`); `--baseline REF` runs the same with agents from another commit first. The skewed
node runs under libfaketime; right after both agents start it pings the good node 10 times. Prints a
table; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from pathlib import Path

from bench_tunnel import checkout

from agent.lab import Lab
from agent.lab.skew import node_view, ping, skewed_clock

TOLD = re.compile(r"this node's clock is [^:]+")


def run(offset: float, count: int, code: Path | None) -> str:
    """One row: the skewed node pings the good one right after both started."""
    with Lab() as lab:
        lab.spawn_agent("local", code=code)
        skewed = lab.spawn_agent("peer", code=code, env=skewed_clock(offset))
        answered = ping(lab, "peer", count, interval=0.5, wait=10)  # late is not lost
        receiver, sender = node_view(lab, "local"), node_view(lab, "peer")
        told = TOLD.search(lab.agent_log(skewed))
    sees_receiver = f"stale {receiver.stale}, future {receiver.future}"
    sees_sender = "; ".join(filter(None, [
        f"offset metric {sender.offset:+.1f} s" if sender.offset is not None else "",
        f"warns \"{told.group(0)}\"" if told else "",
        f"stale {sender.stale}, future {sender.future}" if sender.stale or sender.future else "",
    ])) or "nothing"
    return f"| {offset:+g} s | {answered} of {count} | receiver: {sees_receiver}; sender: {sees_sender} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offsets", default="5,-15", help="seconds the sender's clock is off, comma-separated")
    parser.add_argument("--count", type=int, default=10, help="pings per row (default 10)")
    parser.add_argument("--baseline", metavar="REF", help="first run agents from this commit (a git worktree)")
    args = parser.parse_args()
    offsets = [float(text) for text in args.offsets.split(",")]
    with contextlib.ExitStack() as stack:
        variants: list[tuple[str, Path | None]] = []
        if args.baseline:
            baseline, commit = stack.enter_context(checkout(args.baseline))
            variants.append((f"{args.baseline} ({commit})", baseline))
        variants.append(("this checkout", None))
        for name, code in variants:
            print(f"\n{name}\n\n| the sender's clock | pings answered | what each side sees |\n|---|---:|---|")
            for offset in offsets:
                print(run(offset, args.count, code), flush=True)


if __name__ == "__main__":
    main()
