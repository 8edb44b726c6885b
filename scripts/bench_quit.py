"""Time quitting the demo: from `q` until the dashboard has gone, then the lab's own clean-up.

Runs `hoshino-tui --demo`'s parts headless (needs root and the lab extra), lets the traffic flow for a
few seconds, presses q and times each phase; prints the median and worst of each over --runs runs.
A benchmark to read, not a timed test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from agent.events import EventQueue
from agent.lab.demo import Demo
from hoshino_tui.app import HoshinoApp


async def one_run(traffic: float) -> tuple[float, float, float]:
    """Seconds from q until the app exits, then for the demo's clean-up after it, and q to all gone."""
    events = EventQueue()
    demo = Demo(events)
    app = HoshinoApp(events, demo.make_node, store_factory=demo.make_store, after_start=demo.start_traffic,
                     tear_down=demo.close)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while app.state != "running":
            if time.monotonic() > deadline:
                raise SystemExit(f"the demo did not start: state {app.state}")
            await pilot.pause(0.1)
        await pilot.pause(traffic)
        pressed = time.monotonic()
        await pilot.press("q")
        while app.is_running:
            await pilot.pause(0.01)
    exited = time.monotonic()
    demo.close()  # what the command line does after the app returns (nothing left, once the app did it)
    closed = time.monotonic()
    return exited - pressed, closed - exited, closed - pressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--traffic", type=float, default=5.0, help="seconds of demo traffic before q")
    args = parser.parse_args()
    results = [asyncio.run(one_run(args.traffic)) for _ in range(args.runs)]
    for index, name in enumerate(("q to dashboard gone", "clean-up after it", "q to everything gone")):
        values = [result[index] for result in results]
        print(f"{name:22} median {statistics.median(values):5.2f} s   worst {max(values):5.2f} s   "
              f"({', '.join(f'{value:.2f}' for value in values)})")


if __name__ == "__main__":
    main()
