"""The dashboard on the recorded run, built in one place so tests and snapshots can swap its source."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot

from agent.config import Config
from agent.events import EventQueue, PacketSeen, StatsSampled
from agent.lab.recorded import END, ReplayNode, recorded_events
from hoshino_tui.app import HoshinoApp
from hoshino_tui.screens.dashboard import DashboardScreen
from hoshino_tui.widgets.packet_table import PacketTable

NOW = END + 0.5
"""The fixed clock of every recorded app: half a second after the recording ends."""


def recorded_app() -> tuple[HoshinoApp, ReplayNode]:
    """A dashboard app whose node replays the recorded run, with its clock fixed at NOW."""
    events = EventQueue()
    node = ReplayNode(events)
    app = HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: NOW)
    return app, node


async def settle(pilot: Pilot[Any], timeout: float = 15.0) -> None:
    """Wait until every recorded event is drawn on the dashboard, then drop the toasts (their fade
    is driven by the wall clock) so the screen no longer changes by itself."""
    app = pilot.app
    assert isinstance(app, HoshinoApp)
    recorded = recorded_events()
    packets = sum(isinstance(event, PacketSeen) for event in recorded)
    samples = sum(isinstance(event, StatsSampled) for event in recorded)
    deadline = time.monotonic() + timeout
    dashboard = next(screen for screen in app.screen_stack if isinstance(screen, DashboardScreen))
    table = dashboard.query_one(PacketTable)

    def drawn() -> bool:
        view = app.pump.model.view()
        return (app.pump.count == len(recorded) and table.seen == packets and view is not None
                and view.samples == samples and app.state == "running")

    while not drawn():
        assert time.monotonic() < deadline, f"only {app.pump.count} of {len(recorded)} events were shown"
        await pilot.pause(0.02)
    await pilot.pause()
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()
