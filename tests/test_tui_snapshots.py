"""SVG snapshots of the dashboard and the help screen, from fixed events (the inspector's: test_tui_inspector)."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot

from agent.config import Config
from agent.events import EventQueue
from agent.lab.recorded import END, ReplayNode, recorded_events
from hoshino_tui.app import HoshinoApp

SIZE = (140, 44)
RECORDED = len(recorded_events())


def dashboard_app() -> HoshinoApp:
    events = EventQueue()
    node = ReplayNode(events)
    return HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: END + 0.5)


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


def test_dashboard_snapshot(snap_compare: Any) -> None:
    assert snap_compare(dashboard_app(), terminal_size=SIZE, run_before=settle_dashboard)


def test_help_snapshot(snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle_dashboard(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(dashboard_app(), terminal_size=SIZE, run_before=open_help)
