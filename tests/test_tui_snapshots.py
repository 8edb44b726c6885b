"""SVG snapshots of the dashboard, the inspector and the help screen, from fixed events and objects."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from agent.config import Config
from agent.events import EventQueue
from agent.lab.recorded import END, ReplayNode, recorded_events, sample_bucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.bucket import MemoryStore
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.widgets.object_table import ObjectTable

SIZE = (140, 44)
BUNDLE_SIZE = max(len(body) for body, _ in sample_bucket().values())
RECORDED = len(recorded_events())


def dashboard_app() -> HoshinoApp:
    events = EventQueue()
    node = ReplayNode(events)
    return HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: END + 0.5)


def inspector_app(tmp: Path = Path(".")) -> HoshinoApp:
    store = MemoryStore(sample_bucket())
    return HoshinoApp(config=Config(bucket="hoshino-lab"), store_factory=lambda: store, inspect_only=True,
                      clock=lambda: END + 0.5, pcap_dir=tmp)


async def settle_dashboard(pilot: Pilot[Any]) -> None:
    """Wait until every recorded event is drawn; drop the toasts, whose fade is clock-driven."""
    app = pilot.app
    assert isinstance(app, HoshinoApp)
    deadline = time.monotonic() + 10
    while app.pump.count < RECORDED:
        assert time.monotonic() < deadline, f"only {app.pump.count} of {RECORDED} events were shown"
        await pilot.pause(0.02)
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()


async def settle_inspector(pilot: Pilot[Any]) -> None:
    """Wait for the listing, pick the bundle and put the tree's cursor on a field."""
    screen = pilot.app.screen
    assert isinstance(screen, InspectorScreen)
    table = screen.query_one(ObjectTable)
    deadline = time.monotonic() + 10
    while len(table.objects) < 6 and time.monotonic() < deadline:
        await pilot.pause(0.02)
    bundle = next(row for row, obj in enumerate(table.objects) if obj.size == BUNDLE_SIZE)
    table.move_cursor(row=bundle)
    while not (screen.current == table.objects[bundle] and len(screen.dissections) == 3):
        assert time.monotonic() < deadline, "the bundle was not decoded"
        await pilot.pause(0.02)
    await pilot.press("tab", "down", "down", "down", "down", "down", "down", "down")
    await pilot.pause()


def test_dashboard_snapshot(snap_compare: Any) -> None:
    assert snap_compare(dashboard_app(), terminal_size=SIZE, run_before=settle_dashboard)


def test_inspector_snapshot(snap_compare: Any) -> None:
    assert snap_compare(inspector_app(), terminal_size=SIZE, run_before=settle_inspector)


def test_help_snapshot(snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle_dashboard(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(dashboard_app(), terminal_size=SIZE, run_before=open_help)
