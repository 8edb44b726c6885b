"""Rough edges of the dashboard and the inspector: a replay that looked live, a heartbeat too fast to watch,
a doorbell node's heartbeat pane, quitting in silence, the command palette, the inspector's filter and
layout at 80 columns, plurals, retransmissions."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import dpkt
import pytest
from pilot_helpers import wait_for
from recorded_app import DEMO, recorded_app, replayed_app, settle
from textual.binding import Binding
from textual.widgets import Static

from agent.cli import stopped
from agent.config import Config
from agent.dissect import dissect
from agent.events import EventQueue, StatsSampled
from agent.heartbeat import HOLD_LIMIT, Heartbeat
from agent.lab.network import NOW as NETWORK_NOW
from agent.lab.network import LabPages
from agent.lab.recorded import END, LOCAL, PEER, packet_event, recorded_events, sample_bucket, tcp
from agent.transport import MemoryBucket
from hoshino_tui.app import HOLD_SLOW, HoshinoApp
from hoshino_tui.cli import replay_app
from hoshino_tui.network import NetworkSource
from hoshino_tui.retransmissions import MARK, Retransmissions
from hoshino_tui.screens.dashboard import DashboardScreen
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.screens.network import NetworkScreen
from hoshino_tui.widgets.heartbeat_pane import HeartbeatPane
from hoshino_tui.widgets.hex_view import HexView, width_beside_tree
from hoshino_tui.widgets.layer_tree import LayerTree
from hoshino_tui.widgets.node_header import NodeHeader
from hoshino_tui.widgets.object_table import ObjectTable
from hoshino_tui.widgets.packet_columns import ADDRESS_MIN, INFO_MIN, INFO_WANT
from hoshino_tui.widgets.packet_table import PacketTable

SIZE = (140, 44)


def static_text(widget: object) -> str:
    assert isinstance(widget, Static)
    return str(widget.render())


def footer_keys(app: HoshinoApp) -> set[str]:
    return {str(getattr(key, "key", "")) for key in app.screen.query("FooterKey")}


# 2. A replay is marked as one, its end too, and the keys that cannot act on it are gone.

async def test_a_replay_says_so_and_when_it_has_ended() -> None:
    app, node = replayed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.state == "ended" and node.ended
        header = app.screen.query_one(NodeHeader)
        first, second = (line.plain for line in header.lines(200))
        assert "REPLAY" in first and "netns" not in first
        assert "■ ended" in second and "running" not in second
        assert " at 0:01:" in second and " up " not in second  # the recording's time, not an uptime
        assert "from demo.jsonl.gz at full speed" in second and "endpoint" not in second
        # The heartbeat was recorded: its keys are gone from the footer, the palette and the pane.
        assert not {"f", "s", "a", "h"} & footer_keys(app) and {"p", "i", "q"} <= footer_keys(app)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Poll faster" not in titles and "Hold the heartbeat slow" not in titles
        assert "steer a live node" in static_text(app.screen.query_one("#heartbeat-keys"))
        manual = node.manual
        await pilot.press("f", "s", "h")
        assert node.manual == manual  # nothing was steered


async def test_a_live_node_is_not_marked_as_a_replay() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first, second = (line.plain for line in app.screen.query_one(NodeHeader).lines(200))
        assert "REPLAY" not in first and "● running" in second and " up 0:01:30" in second
        assert {"f", "s", "a"} <= footer_keys(app)


# 5. One key holds the heartbeat at a pace slow enough to see objects wait.

def test_hold_sets_the_interval_at_once_and_keeps_it() -> None:
    heartbeat = Heartbeat(0.001, 0.5)
    heartbeat.found_work()
    heartbeat.hold(HOLD_SLOW)
    assert heartbeat.interval == HOLD_SLOW and heartbeat.manual
    heartbeat.found_work()  # held: traffic does not speed it up
    assert heartbeat.interval == HOLD_SLOW
    heartbeat.hold(HOLD_LIMIT * 10)
    assert heartbeat.interval == HOLD_LIMIT
    heartbeat.automatic()
    assert not heartbeat.manual and heartbeat.interval == 0.5


async def test_h_holds_the_running_nodes_heartbeat_in_one_press() -> None:
    app, node = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("h")
        assert node.calls[-1] == "hold" and node.interval == HOLD_SLOW and node.manual
        shown = static_text(app.screen.query_one("#heartbeat-now"))
        assert "1 poll / 5 s" in shown and "forced" in shown
        assert "h hold 5 s" in static_text(app.screen.query_one("#heartbeat-keys"))
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Hold the heartbeat slow" in titles


# 4. A doorbell node's pane says what wakes it and what the heartbeat still paces.

async def test_a_doorbell_nodes_pane_shows_what_wakes_it() -> None:
    app, node = recorded_app()
    last = [event for event in recorded_events() if isinstance(event, StatsSampled)][-1]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(HeartbeatPane)
        assert pane.border_title == "Heartbeat" and "polls/s" in static_text(pane.query_one("#heartbeat-now"))
        for second in range(1, 4):
            app.events.publish(dataclasses.replace(
                last, time=END + second, wakeup="sqs", interval=0.001, manual=False,
                requests={**last.requests, "sqs.receive": 10 * second},
                s3_ops={**last.s3_ops, "list": 3}))
        await wait_for(pilot, lambda: pane.doorbell and "receives/s" in static_text(pane.query_one("#heartbeat-now")))
        assert pane.border_title == "Wake-up"
        assert "doorbell 10 receives/s" in static_text(pane.query_one("#heartbeat-now"))
        assert "polls/s" not in static_text(pane.query_one("#heartbeat-now"))
        assert "catch-up 3 LISTs so far" in static_text(pane.query_one("#heartbeat-bounds"))
        assert "heartbeat 1 ms: peers with no bell" in static_text(pane.query_one("#heartbeat-skipped"))
        await pilot.press("h")
        assert "heartbeat held 5 s: paces the bells too" in static_text(pane.query_one("#heartbeat-skipped"))
        assert node.calls[-1] == "hold"


# 12. Quitting says what it tears down, and the demo's lab goes alongside the node, once.

async def test_quitting_says_what_it_stops_and_tears_down_once() -> None:
    events = EventQueue()
    app_holder: list[HoshinoApp] = []
    torn: list[tuple[str, list[str]]] = []
    release = threading.Event()

    def tear_down() -> None:
        app = app_holder[0]
        # It runs while the node stops, and the screen already says so.
        torn.append((app.state, [str(n.title) for n in app._notifications]))
        release.wait(5)

    from agent.lab.recorded import ReplayNode

    node = ReplayNode(events)
    app = HoshinoApp(events, lambda: node, tear_down=tear_down, clock=lambda: END)
    app_holder.append(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "running")
        await pilot.press("q", "q")  # a second q while quitting changes nothing
        await wait_for(pilot, lambda: bool(torn) and "stop" in node.calls)
        quitting = [n.message for n in app._notifications if n.title == "Quitting"]
        assert quitting and "removing the demo" in quitting[-1].lower()
        assert app.is_running  # the screen stays until the lab is gone
        release.set()
        await wait_for(pilot, lambda: not app.is_running)
    app.stop_node()  # what a hang-up would do afterwards: nothing left to tear down
    assert len(torn) == 1 and torn[0][0] == "stopping" and "Quitting" in torn[0][1]


# 13. The palette's Quit is ours, and the dashboard's pcap export is there.

async def test_the_palette_quits_our_way_and_writes_pcap_from_the_dashboard(tmp_path: Path) -> None:
    app, _ = recorded_app()
    app.pcap_dir = tmp_path
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        assert commands["Quit"].help.startswith("Stop the node")
        assert not any("as soon as possible" in command.help for command in commands.values())
        assert "Write packets to pcap" in commands
        await pilot.press("slash", *"udp", "enter")
        table = app.screen.query_one(PacketTable)
        shown = [packet.packet for packet in table.shown_packets()]
        await pilot.press("w")
        await wait_for(pilot, lambda: any(tmp_path.glob("hoshino-packets-*.pcap")))
        await wait_for(pilot, lambda: any(n.title == "pcap written" for n in app._notifications))
        message = next(n.message for n in app._notifications if n.title == "pcap written")
        assert message.startswith(f"{len(shown)} packets -> ")
    with next(tmp_path.glob("hoshino-packets-*.pcap")).open("rb") as file:
        assert [bytes(data) for _, data in dpkt.pcap.Reader(file)] == shown


async def test_every_key_of_every_screen_is_in_the_palette() -> None:
    """Each key a screen answers (but Esc, which goes back) has a command of the palette saying it."""
    app, _ = replayed_app()
    pages = LabPages()
    app.network = NetworkSource(pages.local_url, get=pages, clock=lambda: NETWORK_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, screen_type in (("", DashboardScreen), ("i", InspectorScreen), ("n", NetworkScreen)):
            if key:
                await pilot.press(key)
                await wait_for(pilot, lambda screen_type=screen_type: isinstance(app.screen, screen_type))
            helps = [command.help.lower() for command in app.get_system_commands(app.screen)]
            for binding in [*app.screen.BINDINGS, *app.BINDINGS]:
                assert isinstance(binding, Binding)
                if binding.key == "escape" or app.check_action(binding.action, ()) is False:
                    continue
                shown = (binding.key_display or binding.key).lower()
                assert any(help.endswith(f"({shown})") for help in helps), (screen_type.__name__, binding.action)
            if key:
                await pilot.press("escape")
                await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))


# 18. A segment sent again is marked as a retransmission, not taken for a second delivery.

async def test_the_packet_table_marks_a_retransmission() -> None:
    app, _ = recorded_app()
    segment = tcp(PEER, LOCAL, 8081, 51234, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, 77_001, 1_000_001,
                  payload=b"x" * 100)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PacketTable)
        seen = table.seen
        for offset in (1, 2):
            app.events.publish(packet_event(END + offset, segment, "in", "delivered"))
        await wait_for(pilot, lambda: table.seen == seen + 2)
        first, again = table.shown_packets()[-2:]
        assert not first.summary.startswith("[TCP Retransmission]")
        assert again.summary.startswith("[TCP Retransmission] TCP 8081->51234")
        await pilot.press("slash", *"retransmission", "enter")
        assert table.shown_packets() == [again]


# 3. The inspector's filter lets by only what matches, the selection too; its count fits 80 columns.

def sample_inspector(pcap_dir: Path = Path(".")) -> HoshinoApp:
    store = MemoryBucket(objects=sample_bucket())
    return HoshinoApp(config=Config(bucket="hoshino-lab"), store_factory=lambda: store, inspect_only=True,
                      clock=lambda: END, pcap_dir=pcap_dir)


async def test_a_filter_drops_the_selection_it_does_not_match_and_writes_only_what_it_shows(tmp_path: Path) -> None:
    app = sample_inspector(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        table = screen.query_one(ObjectTable)
        await wait_for(pilot, lambda: len(table.objects) == 6)
        for row in range(6):  # a bucket's object is read when selected: read them all
            table.move_cursor(row=row)
            await wait_for(pilot, lambda row=row: table.objects[row].key in screen.bodies)  # type: ignore[misc]
        udp = next(row for row, obj in enumerate(table.objects) if screen._packets(obj)[0].protocol == "UDP"
                   and len(screen._packets(obj)) == 1)
        table.move_cursor(row=udp)
        await wait_for(pilot, lambda: screen.current == table.objects[udp] and bool(screen.dissections))
        await pilot.press("slash", *"echo", "enter")
        await wait_for(pilot, lambda: screen.query_text == "echo" and len(table.objects) == 3)
        await wait_for(pilot, lambda: screen.current is not None and screen.current.key == table.objects[0].key)
        assert all(any("echo" in packet.summary for packet in screen._packets(obj)) for obj in table.objects)
        status = screen.query_one("#inspector-status", Static).render()
        assert "filter echo 3 of 6" in str(status) and len(str(status)) <= 80
        await pilot.press("W")
        await wait_for(pilot, lambda: any(n.title == "pcap written" for n in app._notifications))
        assert next(n.message for n in app._notifications if n.title == "pcap written").startswith(
            "5 packets from 3 objects -> ")  # the echo, the bundle (three) and the reply
        app.clear_notifications()
        await pilot.press("w")
        await wait_for(pilot, lambda: any(n.title == "pcap written" for n in app._notifications))
        # 16. One is one.
        assert next(n.message for n in app._notifications if n.title == "pcap written").startswith(
            "1 packet from 1 object -> ")


# 11. At 80x24 every column of the inspector fits, the dump takes what it needs, Info what is left.

async def test_at_80_by_24_the_inspector_shows_whole_keys_and_the_tree_gets_the_spare_width() -> None:
    app = sample_inspector()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        table = screen.query_one(ObjectTable)
        await wait_for(pilot, lambda: len(table.objects) == 6 and bool(screen.dissections))
        widths = {str(column.label): column.get_render_width(table) for column in table.columns.values()}
        assert "Key (ULID)" in widths and sum(widths.values()) <= table.scrollable_content_region.width
        hex_view, tree = screen.query_one(HexView), screen.query_one(LayerTree)
        assert hex_view.region.width == width_beside_tree(80) == HexView.width_for(hex_view.per_line)
        assert tree.region.width == 80 - hex_view.region.width


async def test_at_80_by_24_info_gets_the_room_and_does_not_repeat_the_protocol() -> None:
    app, _ = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(PacketTable)
        layout = table.current_layout()
        # Info gets INFO_WANT cells, or every cell the other columns can give up: the rare long
        # address (a multicast group) is cut rather than Info.
        widths = {column.key: width for column, width in layout.columns}
        assert layout.info >= INFO_WANT or (widths["destination"] <= ADDRESS_MIN and "no" not in widths)
        assert layout.info > INFO_MIN
        cells = table.cells(1, table.shown_packets()[-1], layout)
        info = cells[-1][0]
        protocol = table.shown_packets()[-1].protocol
        assert not info.startswith(protocol) and info.strip() in table.shown_packets()[-1].summary


# 16. Plurals, in the decoder's words too.

def test_a_one_byte_packet_is_one_byte() -> None:
    one = dissect(b"\x01")
    assert one.summary == "1 byte: 01"
    assert one.layers[0].summary == "1 byte" and one.problems == ("not an IP packet (1 byte, version 0)",)


def test_the_agents_stop_line_counts_one_packet_as_one() -> None:
    node = SimpleNamespace(stats=SimpleNamespace(copy=lambda: {"packets_out": 1, "packets_in": 1500}),
                           config=SimpleNamespace(interface="hoshino0"))
    assert stopped(node, 3.0).startswith("stopped after 3.0s: 1 packet out, 1,500 in;")  # type: ignore[arg-type]


# 18. What counts as a retransmission, within bounded memory.

def test_retransmissions_are_repeated_segments_in_one_direction_within_memory() -> None:
    def segment(seq: int, payload: bytes = b"data", flags: int = dpkt.tcp.TH_ACK) -> bytes:
        return tcp(LOCAL, PEER, 51234, 8081, flags, seq, 1, payload=payload)

    marker = Retransmissions(memory=2)
    first = packet_event(END, segment(100), "out")
    assert marker.mark(first) is first
    assert marker.mark(packet_event(END + 1, segment(100), "out")).summary.startswith(MARK)
    assert marker.mark(packet_event(END + 1, segment(100), "in", "delivered")).summary.startswith("TCP")
    ack = packet_event(END, segment(104, b""), "out")
    assert marker.mark(ack) is ack and marker.mark(ack) is ack  # a pure ACK repeats by design
    syn = packet_event(END, segment(7, b"", dpkt.tcp.TH_SYN), "out")
    assert marker.mark(syn) is syn and marker.mark(syn).summary.startswith(MARK)
    dropped = packet_event(END, segment(100), "out", "dropped")
    assert marker.mark(dropped) is dropped
    for seq in (200, 300, 400):  # pushes the first segments out of its memory of two
        marker.mark(packet_event(END, segment(seq), "out"))
    assert not marker.mark(packet_event(END + 2, segment(100), "out")).summary.startswith(MARK)
    assert marker.count == 2


async def test_p_pauses_a_replays_playback_and_says_so() -> None:
    app, node = replay_app(DEMO, speed=1)  # as recorded: ninety seconds, so there is time to pause
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "replaying" and node.published > 10)
        await pilot.press("p")
        assert node.paused and app.state == "paused"
        await wait_for(pilot, lambda: app.screen.query_one(NodeHeader).facts.state == "paused")
        assert "‖ paused" in app.screen.query_one(NodeHeader).lines(200)[1].plain
        held, published = node.clock(), node.published
        await pilot.pause()
        assert node.clock() == held  # the recording's clock stands still while paused
        await pilot.press("p")
        assert not node.paused and app.state == "replaying"
        await wait_for(pilot, lambda: node.published > published)  # and plays on


@pytest.mark.root
async def test_quitting_the_demo_removes_its_lab_before_the_dashboard_goes() -> None:
    from agent.lab.demo import Demo

    events = EventQueue()
    demo = Demo(events)
    app = HoshinoApp(events, demo.make_node, store_factory=demo.make_store, after_start=demo.start_traffic,
                     tear_down=demo.close)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state == "running", timeout=60)
        lab = demo.lab
        assert lab is not None
        namespaces = [namespace.name for namespace in lab.namespaces.values()]
        await pilot.press("q")
        await wait_for(pilot, lambda: any(n.title == "Quitting" for n in app._notifications))
        await wait_for(pilot, lambda: not app.is_running, timeout=30)
    # All of it went while the dashboard was still there to say so: nothing is left for after.
    assert demo.lab is None and demo.node is not None and demo.node.wait(0)
    assert all(process.poll() is not None for process in lab.agents)
    assert lab.server.process is None or lab.server.process.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in listed for name in namespaces)
