"""SVG snapshots of the dashboard, its help and a packet's decode at three terminal sizes, and of the
inspector, all from the recorded run and a fixed bucket.

Deterministic by construction: the clock is fixed (recorded_app.NOW), every recorded event is drawn
before the picture is taken (settle), toasts are dropped, and no input has the focus (no cursor blink).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from recorded_app import NOW, recorded_app, settle
from textual.pilot import Pilot

from agent.config import Config
from agent.lab.recorded import sample_bucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.bucket import MemoryStore
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.widgets.object_table import ObjectTable

SIZES = [(80, 24), (120, 40), (200, 50)]
INSPECTOR_SIZE = (140, 44)
BUNDLE_SIZE = max(len(body) for body, _ in sample_bucket().values())


def inspector_app(tmp: Path = Path(".")) -> HoshinoApp:
    store = MemoryStore(sample_bucket())
    return HoshinoApp(config=Config(bucket="hoshino-lab"), store_factory=lambda: store, inspect_only=True,
                      clock=lambda: NOW, pcap_dir=tmp)


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


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_dashboard_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _ = recorded_app()
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_help_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    app, _ = recorded_app()
    assert snap_compare(app, terminal_size=size, run_before=open_help)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_packet_detail_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_tcp_packet(pilot: Pilot[Any]) -> None:
        """The newest TCP segment with data, its tree's cursor on the TCP source port."""
        await settle(pilot)
        await pilot.press("slash", *"tcp port 8081 PSH", "enter")
        await pilot.press("up", "enter")
        await pilot.pause()
        await pilot.press(*["down"] * 10)
        await pilot.pause()

    app, _ = recorded_app()
    assert snap_compare(app, terminal_size=size, run_before=open_tcp_packet)


def test_inspector_snapshot(snap_compare: Any) -> None:
    assert snap_compare(inspector_app(), terminal_size=INSPECTOR_SIZE, run_before=settle_inspector)
