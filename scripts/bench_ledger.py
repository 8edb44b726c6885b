"""What exactly-once costs per object: the ledger's claim and delivery record, with and without the journal.

Run: .venv/bin/python scripts/bench_ledger.py [--objects N] [--rounds R]
Prints microseconds of CPU per object (median of the rounds) for the ledger in memory and with its
journal on disk (one write(2) per delivered object, compaction included), and the journal's size.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import tempfile
import time
from pathlib import Path

from agent.journal import Journal
from agent.ledger import Ledger

SENDER = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::b")
PREFIX = "fd5e:59b8:f71d:9a3e::a/"


def one_round(objects: int, journal_dir: Path | None) -> tuple[float, int]:
    """CPU seconds per object, and the journal's bytes at the end (0 without one)."""
    journal = Journal(journal_dir / "delivered.log") if journal_dir is not None else None
    ledger = Ledger(14.0, journal=journal)
    keys = [f"{PREFIX}{n:026d}" for n in range(objects)]
    now = time.time()
    started = time.process_time()
    for key in keys:
        ledger.claim(key, now)
        ledger.deliverable(key, SENDER)
    spent = time.process_time() - started
    size = 0
    if journal is not None:
        journal.close()
        size = (journal_dir / "delivered.log").stat().st_size  # type: ignore[operator]
    return spent / objects, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000, help="objects per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, taking turns (default 5)")
    args = parser.parse_args()
    memory: list[float] = []
    journaled: list[float] = []
    size = 0
    for _ in range(args.rounds):
        memory.append(one_round(args.objects, None)[0])
        with tempfile.TemporaryDirectory() as directory:
            per_object, size = one_round(args.objects, Path(directory))
            journaled.append(per_object)
    in_memory, on_disk = statistics.median(memory) * 1e6, statistics.median(journaled) * 1e6
    print(f"ledger, {args.objects:,} objects x {args.rounds} rounds (median CPU per object):")
    print(f"  in memory (--state-dir off)  {in_memory:6.1f} us")
    print(f"  with the journal             {on_disk:6.1f} us  (+{on_disk - in_memory:.1f} us per delivered object)")
    print(f"  journal at the end           {size / 1024:6.0f} KiB for {args.objects:,} keys inside the window")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
