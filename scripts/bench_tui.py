"""Feed the dashboard 2,000 packets a second plus counter snapshots through the real event queue.

Prints the UI thread's CPU share and the worst delay between publishing an event and the screen
showing it. A benchmark to read, not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from agent.config import Config
from agent.events import EventQueue, NodeStarted, PacketSeen, StatsSampled
from agent.lab.recorded import LOCAL, PEER, PRICES, ReplayNode
from hoshino_tui.app import HoshinoApp
from hoshino_tui.filtering import parse_filter
from hoshino_tui.widgets.packet_table import PacketTable

SUMMARY = "ICMPv6 echo-request id=7 seq={}"


def publish(events: EventQueue, rate: int, seconds: float, done: threading.Event) -> int:
    """Publish rate packets a second in 10 ms slices, and a snapshot every 250 ms; return the count."""
    start = time.time()
    events.publish(NodeStarted(start, LOCAL, "fd5e:59b8:f71d:9a3e::/64", "hoshino0", None, "bench",
                               "http://127.0.0.1:1", 53049, 0.001, 0.5))
    sent, next_stats, slice_ = 0, start, 0.01
    while (now := time.time()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            events.publish(PacketSeen(now, "out" if sent % 2 else "in", LOCAL, PEER, "ICMPv6",
                                      SUMMARY.format(sent % 65536), 104, f"{PEER}/x{sent}", "sent"))
            sent += 1
        if now >= next_stats:
            ops = {"put": sent // 20, "get": sent // 20, "list": int((now - start) * 1000), "delete": sent // 200}
            requests = {f"s3.{op}": n for op, n in ops.items()}
            events.publish(StatsSampled(
                now, "running", 0.001, False, sent // 2, sent * 52, sent // 2, sent * 52, ops,
                {}, {"put": 0.009, "get": 0.009, "list": 0.01, "delete": 0.007}, {}, {}, 0, events.dropped, 0,
                requests=requests, dollars={f"s3.{op}": PRICES.requests("s3", op, n) for op, n in ops.items()},
                nat_dollars=0.045 * (now - start) / 3600 + 0.045 * sent * 104 / 1e9))
            next_stats += 0.25
        time.sleep(slice_)
    done.set()
    return sent


async def run(rate: int, seconds: float, packet_filter: str = "") -> None:
    events = EventQueue()
    node = ReplayNode(events, recorded=[])
    delays: list[float] = []

    def probe(published: float) -> None:
        delays.append(time.time() - published)

    app = HoshinoApp(events, lambda: node, config=Config(bucket="bench"), probe=probe)
    done = threading.Event()
    counted: list[int] = []
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.pause(0.5)
        if packet_filter:
            app.screen.query_one(PacketTable).set_filter(parse_filter(packet_filter))
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        feeder = threading.Thread(target=lambda: counted.append(publish(events, rate, seconds, done)))
        feeder.start()
        while not done.is_set():
            await asyncio.sleep(0.05)
        while app.pump.count < counted[0] + 1 if counted else True:
            await asyncio.sleep(0.05)
        await pilot.pause(0.2)
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        feeder.join()
        await pilot.press("q")
    delays.sort()
    print(f"published {counted[0]} packets in {seconds:.0f} s ({counted[0] / seconds:.0f}/s) "
          f"plus {int(seconds * 4)} snapshots; queue overflow drops: {events.dropped}")
    print(f"UI thread CPU: {cpu:.2f} s of {wall:.2f} s wall = {100 * cpu / wall:.0f}% of one core")
    print(f"event -> screen delay over {len(delays)} redraws: median {1000 * delays[len(delays) // 2]:.0f} ms, "
          f"p99 {1000 * delays[int(len(delays) * 0.99)]:.0f} ms, worst {1000 * delays[-1]:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="packets per second (default 2000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to feed (default 10)")
    parser.add_argument("--filter", default="", help="a packet filter to keep on the table, e.g. 'in seq=1'")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.filter))


if __name__ == "__main__":
    main()
