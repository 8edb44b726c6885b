"""Write screenshots/dashboard.svg, inspector.svg and help.svg from the recorded run and fixed bucket."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from agent.config import Config
from agent.events import EventQueue
from agent.lab.recorded import END, ReplayNode, sample_bucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.bucket import MemoryStore
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.widgets.object_table import ObjectTable

SIZE = (140, 44)
OUT = Path(__file__).resolve().parent.parent / "screenshots"


async def dashboard(help_screen: bool = False) -> str:
    events = EventQueue()
    node = ReplayNode(events)
    app = HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: END + 0.5)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 10
        while app.pump.count < len(node.recorded) and time.monotonic() < deadline:
            await pilot.pause(0.02)
        await pilot.pause()
        app.clear_notifications()
        if help_screen:
            await pilot.press("question_mark")
        await pilot.pause()
        return app.export_screenshot(title="hoshino-tui")


async def inspector() -> str:
    store = MemoryStore(sample_bucket())
    app = HoshinoApp(config=Config(bucket="hoshino-lab"), store_factory=lambda: store, inspect_only=True,
                     clock=lambda: END + 0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        table = screen.query_one(ObjectTable)
        deadline = time.monotonic() + 10
        while not table.objects and time.monotonic() < deadline:
            await pilot.pause(0.02)
        bundle = max(range(len(table.objects)), key=lambda row: table.objects[row].size)
        table.move_cursor(row=bundle)
        while len(screen.dissections) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.02)
        await pilot.press("tab", *["down"] * 7)
        await pilot.pause()
        return app.export_screenshot(title="hoshino-tui --inspect")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    shots = {"dashboard": await dashboard(), "inspector": await inspector(), "help": await dashboard(True)}
    for name, svg in shots.items():
        path = OUT / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
