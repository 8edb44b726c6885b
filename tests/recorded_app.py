"""The dashboard on a recorded run, built in one place so tests and snapshots can swap its source.

Two sources: recorded_app() plays agent.lab.recorded's synthetic run, whose every event the pilot
tests know by construction; replayed_app() plays the demo's recording (tests/data/demo.jsonl.gz, made
by scripts/record_demo.py) through hoshino-tui --replay's own path, as the snapshots and screenshots do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from agent.config import Config
from agent.events import EventQueue, PacketSeen, StatsSampled
from agent.lab.recorded import END, ReplayNode, recorded_events
from agent.lab.replay import RecordingNode, waiting_objects
from agent.recording import Playback
from agent.transport import MemoryBucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.cli import replay_app
from hoshino_tui.screens.dashboard import DashboardScreen
from hoshino_tui.widgets.packet_table import PacketTable

NOW = END + 0.5
"""The fixed clock of every recorded app: half a second after the recording ends."""
DEMO = Path(__file__).parent / "data" / "demo.jsonl.gz"
"""The demo's recording: the lab, its peer and its traffic, as scripts/record_demo.py captured them."""


def recorded_app() -> tuple[HoshinoApp, ReplayNode]:
    """A dashboard app whose node replays the synthetic run, with its clock fixed at NOW."""
    events = EventQueue()
    node = ReplayNode(events)
    app = HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: NOW)
    return app, node


def replayed_app() -> tuple[HoshinoApp, RecordingNode]:
    """The dashboard over the demo's recording played at once (its clock stops at the last event), with
    the objects the node last sent still waiting in a bucket for the inspector to list."""
    store = MemoryBucket(objects=waiting_objects(DEMO))
    return replay_app(DEMO, speed=0, config=Config(bucket="hoshino-lab"), store_factory=lambda: store)


async def settle(pilot: Pilot[Any], timeout: float = 15.0) -> None:
    """Wait until every recorded event is drawn on the dashboard, then drop the toasts (their fade
    is driven by the wall clock) so the screen no longer changes by itself."""
    app = pilot.app
    assert isinstance(app, HoshinoApp)
    deadline = time.monotonic() + timeout
    while app.node is None:
        assert time.monotonic() < deadline, "the node was never made"
        await pilot.pause(0.02)
    replayed = isinstance(app.node, RecordingNode)
    recorded = list(Playback(DEMO)) if replayed else recorded_events()
    published = len(recorded) + replayed  # a replay ends with its "end of the recording" notice
    packets = sum(isinstance(event, PacketSeen) for event in recorded)
    samples = sum(isinstance(event, StatsSampled) for event in recorded)
    dashboard = next(screen for screen in app.screen_stack if isinstance(screen, DashboardScreen))
    table = dashboard.query_one(PacketTable)

    def drawn() -> bool:
        view = app.pump.model.view()
        return (app.pump.count == published and table.seen == packets and view is not None
                and view.samples == samples and app.state == ("ended" if replayed else "running"))

    while not drawn():
        assert time.monotonic() < deadline, f"only {app.pump.count} of {published} events were shown"
        await pilot.pause(0.02)
    await pilot.pause()
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()
