"""Pilot tests of the dashboard: heartbeat keys act on the node, pause, filter, decode, layout, failures shown."""

from __future__ import annotations

import dataclasses
import io

import pytest
from pilot_helpers import wait_for
from recorded_app import recorded_app, settle
from rich.console import Console
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from agent.config import Config
from agent.events import EventQueue, NodeStopped, PacketSeen, StatsSampled
from agent.lab import Lab
from agent.lab.recorded import END, LOCAL, PEER, ReplayNode, echo, packet_event, recorded_events
from hoshino_tui.app import HoshinoApp
from hoshino_tui.screens.dashboard import DashboardScreen
from hoshino_tui.screens.help import HelpScreen
from hoshino_tui.screens.packet_detail import PacketDetailScreen
from hoshino_tui.widgets.cost_pane import CostPane
from hoshino_tui.widgets.drops_pane import DropsPane
from hoshino_tui.widgets.filter_bar import FilterBar
from hoshino_tui.widgets.heartbeat_pane import HeartbeatPane
from hoshino_tui.widgets.hex_view import HexView
from hoshino_tui.widgets.layer_tree import LayerTree
from hoshino_tui.widgets.node_header import NodeHeader
from hoshino_tui.widgets.packet_columns import INFO_MIN
from hoshino_tui.widgets.packet_table import PacketTable
from hoshino_tui.widgets.problem_banner import ProblemBanner
from hoshino_tui.widgets.rate_row import RateRow
from hoshino_tui.widgets.s3_pane import S3Pane
from hoshino_tui.widgets.traffic_pane import TrafficPane

SIZE = (140, 44)
RECORDED_PACKETS = [event for event in recorded_events() if isinstance(event, PacketSeen)]


def text_of(widget: Widget, width: int = 200) -> str:
    """What a Static shows, as plain text."""
    assert isinstance(widget, Static)
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def heartbeat_text(app: HoshinoApp) -> str:
    return text_of(app.screen.query_one("#heartbeat-now"))


def footer_labels(app: HoshinoApp) -> dict[str, Widget]:
    """The footer's keys by their description."""
    return {str(getattr(key, "description", "")): key for key in app.screen.query("FooterKey")}


async def test_f_and_s_change_the_running_nodes_interval() -> None:
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
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
        await wait_for(pilot, lambda: not app.is_running, timeout=10)  # q stops the node, then leaves
    assert node.calls[-1] == "stop"


async def test_p_freezes_and_resumes_the_table_and_the_footer_says_which() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PacketTable)
        shown = table.shown_serials()
        assert shown and shown[-1] == table.seen
        assert table.cursor_row == table.row_count - 1  # following the newest
        assert "Pause" in footer_labels(app) and "Resume" not in footer_labels(app)
        await pilot.press("p")
        assert table.paused
        await pilot.pause()
        assert "Resume" in footer_labels(app) and "Pause" not in footer_labels(app)
        assert app.screen.active_bindings["p"].binding.description == "Resume"
        later = [packet_event(END + 1 + n / 10, echo(LOCAL, PEER, 9, n), "out") for n in range(5)]
        for event in later:
            app.events.publish(event)
        await wait_for(pilot, lambda: table.seen == shown[-1] + 5)
        assert table.shown_serials() == shown  # frozen while the node goes on
        await pilot.press("p")
        assert not table.paused
        await pilot.pause()
        assert "Pause" in footer_labels(app)
        assert table.shown_serials()[-1] == shown[-1] + 5
        assert table.packet_at_cursor() == later[-1]
        assert len(table.shown_serials()) <= table.max_rows


async def test_slash_udp_enter_shows_only_udp_and_escape_clears() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PacketTable)
        everything = table.shown_serials()
        await pilot.press("slash")
        bar = app.screen.query_one(FilterBar)
        assert bar.has_class("-open")
        await pilot.press("u", "d", "p", "enter")
        udp = [packet for packet in RECORDED_PACKETS if packet.protocol == "UDP"]
        assert [packet.protocol for packet in table.shown_packets()] == ["UDP"] * len(udp)
        assert table.shown_packets() == udp
        assert not bar.has_class("-open") and table.has_focus
        assert table.border_subtitle is not None and "udp" in table.border_subtitle
        # New packets are filtered as they come.
        app.events.publish(packet_event(END + 1, echo(LOCAL, PEER, 9, 1), "out"))
        await wait_for(pilot, lambda: table.seen == len(RECORDED_PACKETS) + 1)
        assert len(table.shown_packets()) == len(udp)
        await pilot.press("escape")
        assert not table.filter.active
        assert table.shown_serials() == [*everything, len(RECORDED_PACKETS) + 1]
        assert table.border_subtitle is None


async def test_a_bad_filter_is_named_and_changes_nothing() -> None:
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PacketTable)
        before = table.shown_serials()
        await pilot.press("slash", "p", "o", "r", "t", "enter")
        bar = app.screen.query_one(FilterBar)
        assert bar.has_class("-open")
        assert "needs a number" in text_of(bar.query_one(".filter-error"))
        assert table.shown_serials() == before
        await pilot.press("escape")  # closes the bar; nothing was filtered
        assert not bar.has_class("-open")
        assert table.shown_serials() == before
        await pilot.press("slash", "q", "f")  # typed into the bar, not taken as keys
        assert app.is_running and node.calls == ["start"]


async def test_table_stays_bounded() -> None:
    app, node = recorded_app()
    node.recorded = [packet_event(END + n / 1000, echo(LOCAL, PEER, 1, n % 65536), "out") for n in range(1800)]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == 1800)
        table = app.screen.query_one(PacketTable)
        assert table.row_count == table.max_rows
        assert table.shown_serials()[-1] == 1800


async def test_enter_opens_the_full_decode() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, PacketDetailScreen)
        assert app.screen.event.summary.startswith("ICMPv6 echo-reply")
        facts = text_of(app.screen.query_one("#packet-facts"))
        assert app.screen.event.key in facts
        assert "echo-reply id=7 seq=89" in facts
        assert "55 bytes" in facts
        await pilot.press("escape")
        assert not isinstance(app.screen, PacketDetailScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize(("size", "per_line"), [((80, 24), 8), ((120, 40), 8), ((200, 50), 16)])
async def test_decode_screen_shares_the_width(size: tuple[int, int], per_line: int) -> None:
    app, _ = recorded_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        tree, hex_view = app.screen.query_one(LayerTree), app.screen.query_one(HexView)
        assert hex_view.per_line == per_line
        assert tree.region.width >= 30 and tree.region.right <= hex_view.region.x
        assert hex_view.region.right == size[0]


async def test_state_header_and_notices() -> None:
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        header = app.screen.query_one(NodeHeader)
        await wait_for(pilot, lambda: header.facts.state == "running")  # posted is not yet drawn
        assert header.facts.address == LOCAL
        assert "up 0:01:30" in header.lines(200)[1].plain
        messages = [notification.message for notification in app._notifications]
        assert "S3 is throttling requests (SlowDown): backing off" in messages
        assert "S3 recovered" in messages
        node.events.publish(NodeStopped(END + 2, error="S3 endpoint unreachable: check --endpoint-url"))
        await wait_for(pilot, lambda: app.state == "failed")
        banner = app.screen.query_one(ProblemBanner)
        assert "check --endpoint-url" in text_of(banner)
        assert header.facts.state == "failed"


def inside(region: Region, outer: Region) -> bool:
    return region.area > 0 and outer.contains_region(region)


async def test_every_pane_shows_its_key_figures_at_80_by_24() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        panes_area = Region(0, 0, 80, 23)  # above the footer
        header = screen.query_one(NodeHeader)
        first, second = header.lines(header.content_region.width)
        assert LOCAL in first.plain and "running" in second.plain and "up 0:01:30" in second.plain
        assert "…" not in first.plain + second.plain  # parts are left out whole, never cut
        for pane in (S3Pane, HeartbeatPane, TrafficPane, CostPane):
            assert inside(screen.query_one(pane).region, panes_area), pane.__name__
        # Rates fit beside their sparklines in every row.
        for row in screen.query(RateRow):
            assert inside(row.content_region, row.parent.content_region)  # type: ignore[union-attr]
            assert "/s" in row.shown_figures(row.content_region.width)
        heartbeat = screen.query_one(HeartbeatPane)
        for line in ("#heartbeat-now", "#heartbeat-bounds", "#heartbeat-skipped", "#heartbeat-history"):
            assert inside(heartbeat.query_one(line).region, heartbeat.content_region), line
        assert "polls/s" in heartbeat_text(app)
        assert "pipeline full: 2" in text_of(heartbeat.query_one("#heartbeat-skipped"))
        cost = screen.query_one(CostPane)
        table_text = text_of(cost.query_one("#cost-table"), width=cost.content_region.width)
        assert inside(cost.query_one("#cost-table").region, cost.content_region)
        assert all(word in table_text for word in ("per hour", "since start", "per GB", "NAT"))
        # Two panes a row and short: the drops pane gives way; its totals go in the traffic border.
        assert not screen.query_one(DropsPane).display
        assert screen.query_one(TrafficPane).border_subtitle == "1 dropped · 4 ignored"
        packets = screen.query_one(PacketTable)
        assert inside(packets.region, panes_area)
        assert packets.scrollable_content_region.height - 1 >= 5  # five rows under the header
        layout = packets.current_layout()
        assert {column.key for column, _ in layout.columns} >= {"time", "source", "destination", "proto", "verdict"}
        assert layout.info >= INFO_MIN
        keys = footer_labels(app)
        assert {"Pause", "Filter", "Help", "Quit"} <= set(keys)
        assert all(key.region.right <= 80 for key in keys.values())


async def test_wide_screen_shows_addresses_in_full_and_all_columns() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        screen = app.screen
        layout = screen.query_one(PacketTable).current_layout()
        assert layout.full_addresses and not layout.reason_in_info
        assert [column.key for column, _ in layout.columns] == [
            "no", "time", "dir", "source", "destination", "proto", "len", "verdict", "reason"]
        assert screen.query_one(DropsPane).display
        assert screen.query_one(TrafficPane).border_subtitle is None
        s3 = screen.query_one("#s3-list", RateRow)
        assert "total" in s3.shown_figures(s3.content_region.width)


async def test_cost_pane_shows_the_recorded_runs_arithmetic() -> None:
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        cost = app.screen.query_one(CostPane)
        assert cost.cost is not None
        view = cost.cost
        last = [event for event in node.recorded if hasattr(event, "dollars")][-1]
        assert view.so_far == pytest.approx(sum(last.dollars.values()))  # type: ignore[attr-defined]
        moved = (last.bytes_in + last.bytes_out) / 1e9  # type: ignore[attr-defined]
        assert view.per_gb == pytest.approx(view.so_far / moved)
        # A NAT gateway's hour: $0.045 plus $0.045 per GB at the run's (tiny) pace.
        assert view.nat_per_hour == pytest.approx(0.045, rel=0.01)
        shown = text_of(cost.query_one("#cost-table"), width=60)
        assert f"${view.so_far:.3f}" in shown and "$0.0450" in shown
        assert "s3.list" in text_of(cost.query_one("#cost-item"))
        assert cost.border_subtitle == "wake-up: polling"


async def test_help_lists_every_binding_of_every_screen() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        text = " ".join(text_of(app.screen.query_one("#help-text"), width=100).split())
        from hoshino_tui.screens.inspector import InspectorScreen

        for binding in [*HoshinoApp.BINDINGS, *DashboardScreen.BINDINGS, *InspectorScreen.BINDINGS]:
            assert binding.description in text, binding  # type: ignore[union-attr]
            if binding.tooltip:  # type: ignore[union-attr]
                assert binding.tooltip.split(";")[0] in text  # type: ignore[union-attr]
        assert "port N" in text and "pipeline was full" in text and "NAT gateway" in text


async def test_help_of_the_inspector_alone_leaves_out_the_node_keys() -> None:
    from agent.lab.recorded import sample_bucket
    from agent.transport import MemoryBucket

    store = MemoryBucket(objects=sample_bucket())
    app = HoshinoApp(config=Config(bucket="b"), store_factory=lambda: store, inspect_only=True, clock=lambda: END)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(text_of(app.screen.query_one("#help-text"), width=76).split())
        assert "Write pcap" in text and "Quit" in text
        assert "Faster" not in text and "Pause" not in text
        box = app.screen.query_one("#help-box")
        assert box.region.right <= 80 and box.region.bottom <= 24  # the box fits the screen


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
    app, _ = recorded_app()
    async with app.run_test(size=SIZE):
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {"Poll faster", "Poll slower", "Hold the heartbeat slow", "Automatic heartbeat", "Inspector", "Help",
            "Pause or resume packets", "Filter packets", "Decode packet", "Write packets to pcap", "Quit"} <= titles


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
        # A polling node's pane says forced; a doorbell node's, that the heartbeat is held.
        await wait_for(pilot, lambda: "forced" in heartbeat_text(app)
                       or "held" in text_of(app.screen.query_one("#heartbeat-skipped")), timeout=5)
        await pilot.press("a")
        assert not node.manual
        await pilot.press("q")
    assert nodes[0].wait(timeout=5)


async def test_the_header_shows_the_clock_s_offset_and_the_drops_pane_how_far_off_a_refused_stamp_was():
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.pump.count == len(node.recorded))
        header = app.screen.query_one(NodeHeader)
        assert "clock" not in header.lines(200)[1].plain  # a recording from before the clock was told
        last = [event for event in node.recorded if isinstance(event, StatsSampled)][-1]
        node.events.publish(dataclasses.replace(last, time=END + 1, clock_offset=-15.04))
        node.events.publish(PacketSeen(
            END + 1, "in", "", LOCAL, "object", "object of 180 bytes, stamped 90.2 s ahead of the bucket's clock "
            "when PUT, 0 s ago", 0, "key", "dropped", "future"))
        await wait_for(pilot, lambda: header.facts.clock_offset == -15.04)
        assert "clock -15.0 s from the bucket's" in header.lines(200)[1].plain
        drops = app.screen.query_one(DropsPane)
        await wait_for(pilot, lambda: "stamped 90.2 s ahead of the bucket's clock" in text_of(drops, 300))


def test_the_drops_pane_shows_the_reasons_of_a_bell_flood() -> None:
    """Any reason the node counts is a row of its own: the doorbell's too."""
    pane = DropsPane()
    pane.show_counts({"unverified_bell": 8955, "missing_object": 16, "bogus_bell": 2}, {})
    rows = {line.split()[1]: line.split()[2] for line in text_of(pane).splitlines() if line.startswith("dropped")}
    assert rows == {"bogus_bell": "2", "missing_object": "16", "unverified_bell": "8955"}
