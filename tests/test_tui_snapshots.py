"""SVG snapshots of the dashboard, its help and a packet's decode at three terminal sizes, from the recorded
run (the inspector's are in test_tui_inspector).

Deterministic by construction: the clock is fixed (recorded_app.NOW), every recorded event is drawn
before the picture is taken (settle), toasts are dropped, and no input has the focus (no cursor blink).
"""

from __future__ import annotations

from typing import Any

import pytest
from recorded_app import recorded_app, settle
from textual.pilot import Pilot

from agent.lab.recorded import sample_bucket

SIZES = [(80, 24), (120, 40), (200, 50)]
INSPECTOR_SIZE = (140, 44)
BUNDLE_SIZE = max(len(body) for body, _ in sample_bucket().values())


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
