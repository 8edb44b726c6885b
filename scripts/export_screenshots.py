"""Write screenshots/dashboard.svg, inspector.svg and help.svg from the recorded demo (tests/data/demo.jsonl.gz),
and network.svg from the lab's three nodes' pages (agent.lab.network)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from textual.pilot import Pilot

from agent.config import Config
from agent.lab.network import NOW, LabPages
from agent.lab.replay import RecordingNode, waiting_objects
from agent.recording import Playback
from agent.transport import MemoryBucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.cli import replay_app
from hoshino_tui.network import NetworkSource
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.screens.network import NetworkScreen
from hoshino_tui.widgets.object_table import ObjectTable

SIZE = (140, 44)
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
RECORDING = ROOT / "tests" / "data" / "demo.jsonl.gz"


def replay() -> tuple[HoshinoApp, RecordingNode]:
    """The dashboard over the recorded demo played at once, with the objects it last sent still waiting."""
    store = MemoryBucket(objects=waiting_objects(RECORDING))
    return replay_app(RECORDING, speed=0, config=Config(bucket="hoshino-lab"), store_factory=lambda: store)


async def until(pilot: Pilot[None], condition: object, what: str) -> None:
    deadline = time.monotonic() + 20
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def shot(screen: str) -> str:
    app, node = replay()
    pages = LabPages()
    app.network = NetworkSource(pages.local_url, get=pages, clock=lambda: NOW)
    recorded = sum(1 for _ in Playback(RECORDING))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: node.published == recorded and app.pump.count > recorded, "the replay")
        await pilot.pause(1.2)  # a tick of the header's clock, at the recording's time
        app.clear_notifications()
        if screen == "help":
            await pilot.press("question_mark")
        elif screen == "network":
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, NetworkScreen) and app.screen.readings > 0,
                        "the nodes' pages")
        elif screen == "inspector":
            await pilot.press("i")
            inspector = app.screen
            assert isinstance(inspector, InspectorScreen)
            table = inspector.query_one(ObjectTable)
            await until(pilot, lambda: any(obj.where == "bucket" for obj in table.objects), "the listing")
            # The reply to the demo's metrics fetch: a TCP segment that carries the page.
            row = next(row for row, obj in enumerate(table.objects) if obj.where == "received"
                       and "len=0" not in inspector._packets(obj)[0].summary
                       and inspector._packets(obj)[0].protocol == "TCP")
            table.move_cursor(row=row)
            key = table.objects[row].key
            await until(pilot, lambda: inspector.current is not None and inspector.current.key == key, "the selection")
            await pilot.press("tab", *["down"] * 14)
            app.clear_notifications()
        await pilot.pause()
        title = "hoshino-tui: the network screen (n) on the lab's three nodes" if screen == "network" \
            else "hoshino-tui --replay tests/data/demo.jsonl.gz"
        return app.export_screenshot(title=title)


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name in ("dashboard", "inspector", "help", "network"):
        path = OUT / f"{name}.svg"
        path.write_text(await shot(name), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
