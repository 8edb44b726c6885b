"""Pilot tests of the dashboard: heartbeat keys act on the node, pause, decode, failures shown."""

from __future__ import annotations

import io

import pytest
from pilot_helpers import wait_for
from rich.console import Console
from textual.widget import Widget
from textual.widgets import Static

from agent.config import Config
from agent.events import EventQueue, NodeStopped
from agent.lab import Lab
from agent.lab.recorded import END, LOCAL, PEER, ReplayNode, echo, packet_event
from hoshino_tui.app import HoshinoApp
from hoshino_tui.screens.help import HelpScreen
from hoshino_tui.screens.packet_detail import PacketDetailScreen
from hoshino_tui.widgets.node_header import NodeHeader
from hoshino_tui.widgets.packet_table import PacketTable
from hoshino_tui.widgets.problem_banner import ProblemBanner

SIZE = (140, 44)


def replay_app() -> tuple[HoshinoApp, ReplayNode]:
    events = EventQueue()
    node = ReplayNode(events)
    app = HoshinoApp(events, lambda: node, config=Config(bucket="hoshino-lab"), clock=lambda: END + 0.5)
    return app, node


def text_of(widget: Widget) -> str:
    """What a Static shows, as plain text."""
    assert isinstance(widget, Static)
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def heartbeat_text(app: HoshinoApp) -> str:
    return text_of(app.screen.query_one("#heartbeat-now"))


async def test_f_and_s_change_the_running_nodes_interval() -> None:
    app, node = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        before = node.interval
        await pilot.press("f")
        assert node.interval == before / 2
        assert node.manual
        assert heartbeat_text(app).startswith("32 ms") and "forced" in heartbeat_text(app)
        await pilot.press("s", "s")
        assert node.interval == before * 2
        assert heartbeat_text(app).startswith("128 ms")
        await pilot.press("a")
        assert not node.manual
        assert node.calls[1:] == ["faster", "slower", "slower", "automatic"]
        await pilot.press("q")
    assert node.calls[-1] == "stop"


async def test_p_freezes_and_resumes_the_table() -> None:
    app, node = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        table = app.screen.query_one(PacketTable)
        shown = table.shown_serials()
        assert shown and shown[-1] == table.seen
        assert table.cursor_row == table.row_count - 1  # following the newest
        await pilot.press("p")
        assert table.paused
        later = [packet_event(END + 1 + n / 10, echo(LOCAL, PEER, 9, n), "out") for n in range(5)]
        for event in later:
            app.events.publish(event)
        await wait_for(pilot, lambda: table.seen == shown[-1] + 5)
        assert table.shown_serials() == shown  # frozen while the node goes on
        await pilot.press("p")
        assert not table.paused
        assert table.shown_serials()[-1] == shown[-1] + 5
        assert table.packet_at_cursor() == later[-1]
        assert len(table.shown_serials()) <= table.max_rows


async def test_table_stays_bounded() -> None:
    app, node = replay_app()
    node.recorded = [packet_event(END + n / 1000, echo(LOCAL, PEER, 1, n % 65536), "out") for n in range(1800)]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == 1800)
        table = app.screen.query_one(PacketTable)
        assert table.row_count == table.max_rows
        assert table.shown_serials()[-1] == 1800


async def test_enter_opens_the_full_decode() -> None:
    app, node = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        await pilot.press("enter")
        assert isinstance(app.screen, PacketDetailScreen)
        assert app.screen.event.summary.startswith("ICMPv6 echo-reply")
        facts = text_of(app.screen.query_one("#packet-facts"))
        assert app.screen.event.key in facts
        assert "echo-reply id=7 seq=89" in facts
        await pilot.press("escape")
        assert not isinstance(app.screen, PacketDetailScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_state_header_and_notices() -> None:
    app, node = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        header = app.screen.query_one(NodeHeader)
        assert header.facts.state == "running"
        assert header.facts.address == LOCAL
        assert "up 0:01:30" in text_of(header)
        messages = [notification.message for notification in app._notifications]
        assert "S3 is throttling requests (SlowDown): backing off" in messages
        assert "S3 recovered" in messages
        node.events.publish(NodeStopped(END + 2, error="S3 endpoint unreachable: check --endpoint-url"))
        await wait_for(pilot, lambda: app.state == "failed")
        banner = app.screen.query_one(ProblemBanner)
        assert "check --endpoint-url" in text_of(banner)


class FailingNode(ReplayNode):
    def start(self) -> None:
        raise RuntimeError("needs CAP_NET_ADMIN: run as root")


async def test_a_node_that_cannot_start_is_shown_not_crashed_on() -> None:
    events = EventQueue()
    node = FailingNode(events)
    app = HoshinoApp(events, lambda: node, config=Config(bucket="b"), clock=lambda: END)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "failed")
        banner = app.screen.query_one(ProblemBanner)
        assert banner.has_class("-shown")
        assert "run as root" in text_of(banner)
        await pilot.press("f")  # no node to act on: a warning, not a crash
        assert "faster" not in node.calls
        assert node.calls == ["stop"]  # a failed start is still cleaned up
        assert app.is_running
        await pilot.press("q")
    assert not app.is_running


async def test_a_node_that_cannot_be_made_is_shown() -> None:
    def broken() -> ReplayNode:
        raise ValueError("address fd00::1 is outside network fd5e::/64")

    app = HoshinoApp(EventQueue(), broken, clock=lambda: END)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "failed")
        assert "outside network" in text_of(app.screen.query_one(ProblemBanner))


async def test_command_palette_offers_every_action() -> None:
    app, _ = replay_app()
    async with app.run_test(size=SIZE):
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {"Poll faster", "Poll slower", "Automatic heartbeat", "Inspector", "Help",
            "Pause or resume packets", "Decode packet", "Stop and quit"} <= titles


@pytest.mark.root
async def test_f_and_s_act_on_a_real_node_in_the_lab(lab: Lab) -> None:
    from agent.node import Node

    lab.start_peer()
    config = lab.local_config(metrics_listen=None)
    events = EventQueue()
    nodes: list[Node] = []

    def make() -> Node:
        nodes.append(Node(config, events))
        return nodes[-1]

    app = HoshinoApp(events, make, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "running", timeout=30)
        node = nodes[0]
        await pilot.press("s")  # from wherever the heartbeat is, slower first, then measure
        before = node.interval
        await pilot.press("f")
        assert node.interval < before and node.manual
        faster = node.interval
        await pilot.press("s")
        assert node.interval > faster
        await wait_for(pilot, lambda: "forced" in heartbeat_text(app), timeout=5)
        await pilot.press("a")
        assert not node.manual
        await pilot.press("q")
    assert nodes[0].wait(timeout=5)
