"""SVG snapshots of the dashboard, its help and a packet's decode at three terminal sizes, from the demo's
recording played through hoshino-tui --replay's path (the inspector's are in test_tui_inspector).

Deterministic by construction: the replay's clock stops at its last event, every recorded event is
drawn before the picture is taken (settle), toasts are dropped, and no input has the focus.
"""

from __future__ import annotations

from typing import Any

import pytest
from recorded_app import replayed_app, settle
from textual.pilot import Pilot

SIZES = [(80, 24), (120, 40), (200, 50)]
INSPECTOR_SIZE = (140, 44)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_dashboard_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _ = replayed_app()
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_help_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    app, _ = replayed_app()
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

    app, _ = replayed_app()
    assert snap_compare(app, terminal_size=size, run_before=open_tcp_packet)
