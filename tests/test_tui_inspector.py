"""Pilot tests of the inspector: a real local S3 server, the node's carried objects from a replayed demo, a snapshot."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import dpkt
from pilot_helpers import wait_for
from recorded_app import DEMO, replayed_app
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from agent import wire
from agent.config import Config
from agent.lab import S3Server
from agent.lab.recorded import LOCAL, PEER, echo, sample_packets
from agent.lab.replay import RecordingNode
from agent.recording import Playback
from agent.transport import MemoryBucket, open_bucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.cli import replay_app
from hoshino_tui.network import NOT_A_NODE_KEY
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.screens.network import NetworkScreen
from hoshino_tui.widgets.hex_view import HexView
from hoshino_tui.widgets.layer_tree import LayerTree
from hoshino_tui.widgets.object_table import ObjectTable

SIZE = (140, 44)
PREFIX = "t/"
RECORDED = sum(1 for _ in Playback(DEMO))


def fill(s3_server: S3Server, bucket: str) -> dict[str, bytes]:
    """Objects as agents write them: three raw packets and a bundle to the peer, a reply to us."""
    packets = sample_packets()
    keys = wire.KeyMaker(PREFIX)
    bodies = {
        keys.make(ipaddress.IPv6Address(PEER)): packets["echo"],
        keys.make(ipaddress.IPv6Address(PEER)): packets["syn"],
        keys.make(ipaddress.IPv6Address(PEER)): packets["udp"],
        keys.make(ipaddress.IPv6Address(PEER)): wire.encode([packets["echo"], packets["syn"], packets["udp"]]),
        keys.make(ipaddress.IPv6Address(LOCAL)): echo(PEER, LOCAL, 7, 3, reply=True),
    }
    client = s3_server.client()
    for key, body in bodies.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    client.put_object(Bucket=bucket, Key="elsewhere/readme", Body=b"not listed: outside the prefix")
    return bodies


def inspector_app(s3_server: S3Server, bucket: str, pcap_dir: Path) -> HoshinoApp:
    config = Config(bucket=bucket, endpoint_url=s3_server.endpoint_url, key_prefix=PREFIX)
    return HoshinoApp(config=config, store_factory=lambda: open_bucket(bucket, s3_server.endpoint_url),
                      inspect_only=True, pcap_dir=pcap_dir)


async def select(pilot: Pilot[None], screen: InspectorScreen, row: int) -> None:
    table = screen.query_one(ObjectTable)
    table.move_cursor(row=row)
    await wait_for(pilot, lambda: screen.current == table.objects[row] and bool(screen.dissections)
                   and screen.dissections[0].packet == wire.decode(screen.bodies[table.objects[row].key]).packets[0])


async def listed(pilot: Pilot[None], count: int) -> tuple[InspectorScreen, ObjectTable]:
    """The inspector and its object table, once it lists count objects."""
    screen = pilot.app.screen
    assert isinstance(screen, InspectorScreen)
    table = screen.query_one(ObjectTable)
    await wait_for(pilot, lambda: len(table.objects) == count)
    return screen, table


async def test_lists_grouped_objects_and_decodes_each_kind(s3_server: S3Server, bucket: str,
                                                           tmp_path: Path) -> None:
    bodies = fill(s3_server, bucket)
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, 5)
        assert {obj.key for obj in table.objects} == set(bodies)
        assert [obj.destination for obj in table.objects] == [PEER] * 4 + [LOCAL] or \
            [obj.destination for obj in table.objects] == [LOCAL] + [PEER] * 4
        peer_rows = [obj for obj in table.objects if obj.destination == PEER]
        assert [obj.key for obj in peer_rows] == sorted(obj.key for obj in peer_rows)
        first_peer = table.objects.index(peer_rows[0])

        await select(pilot, screen, first_peer)
        icmp = screen.dissections[0].layer("ICMPv6")
        assert icmp.field("Type").value == 128
        assert icmp.field("Identifier").value == 7
        assert icmp.field("Sequence").value == 3
        assert screen.dissections[0].layer("IPv6").field("Destination").value == PEER

        await select(pilot, screen, first_peer + 1)
        syn = screen.dissections[0].layer("TCP")
        assert syn.field("Flags").text == "0x002 [SYN]"
        assert syn.field("Source port").value == 51234
        assert syn.field("Destination port").value == 8081
        assert syn.field("Option MSS").text == "MSS 1440"

        await select(pilot, screen, first_peer + 2)
        datagram = screen.dissections[0].layer("UDP")
        assert (datagram.field("Source port").value, datagram.field("Length").value) == (5353, 28)
        assert screen.dissections[0].layer("Payload").field("Data").value == b"hoshino udp datagram"

        await select(pilot, screen, first_peer + 3)
        assert [d.summary.split()[0] for d in screen.dissections] == ["ICMPv6", "TCP", "UDP"]

        # Walking the structure highlights the selected field's bytes in the hex view.
        tree, hex_view = screen.query_one(LayerTree), screen.query_one(HexView)
        tree.focus()
        await pilot.press("down", "down", "down")
        span = tree.cursor_node.data if tree.cursor_node else None
        assert span is not None
        assert hex_view.span == (span.offset, span.length)
        assert hex_view.data == screen.dissections[span.index].packet


async def test_pcap_export_reads_back_byte_for_byte(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    bodies = fill(s3_server, bucket)
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, 5)
        objects = list(table.objects)
        await pilot.press("W")
        await wait_for(pilot, lambda: any(tmp_path.glob("hoshino-all-*.pcap")))
        bundle_row = next(i for i, obj in enumerate(objects) if wire.body_format(bodies[obj.key]) == "bundle-v1")
        await select(pilot, screen, bundle_row)
        await pilot.press("w")
        await wait_for(pilot, lambda: any(tmp_path.glob("hoshino-object-*.pcap")))
        await pilot.pause(0.2)

    expected_all = [packet for obj in objects for packet in wire.decode(bodies[obj.key]).packets]
    with next(tmp_path.glob("hoshino-all-*.pcap")).open("rb") as file:
        reader = dpkt.pcap.Reader(file)
        assert reader.datalink() == 101
        read = [(ts, bytes(data)) for ts, data in reader]
    assert [data for _, data in read] == expected_all
    sent = [obj.sent_at.timestamp() for obj in objects for _ in wire.decode(bodies[obj.key]).packets if obj.sent_at]
    assert [round(ts, 3) for ts, _ in read] == [round(ts, 3) for ts in sent]

    with next(tmp_path.glob("hoshino-object-*.pcap")).open("rb") as file:
        written = [bytes(data) for _, data in dpkt.pcap.Reader(file)]
    assert written == wire.decode(bodies[objects[bundle_row].key]).packets


async def test_a_bucket_that_cannot_be_listed_is_reported(s3_server: S3Server, tmp_path: Path) -> None:
    app = inspector_app(s3_server, "no-such-bucket-here", tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app._notifications))
        message = next(iter(app._notifications)).message
        assert "listing the bucket failed" in message
        assert app.is_running


def planted(s3_server: S3Server, bucket: str) -> str:
    """A malformed object among the good ones, as the demo plants one every half minute."""
    key = wire.KeyMaker(PREFIX).make(ipaddress.IPv6Address(LOCAL))
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"\x00not a packet")
    return key


async def test_export_writes_the_good_packets_skips_the_bad_and_never_overwrites(
        s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    bodies = fill(s3_server, bucket)
    planted(s3_server, bucket)
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, 6)
        objects = list(table.objects)
        await pilot.press("W")
        await wait_for(pilot, lambda: len(list(tmp_path.glob("hoshino-all-*.pcap"))) == 1)
        await pilot.press("W")  # the same second: a second file, not the first one overwritten
        await wait_for(pilot, lambda: len(list(tmp_path.glob("hoshino-all-*.pcap"))) == 2)
        await wait_for(pilot, lambda: sum("pcap" in str(n.title) for n in app._notifications) == 2)
        messages = [n.message for n in app._notifications if "pcap" in str(n.title)]
        assert all("skipped: 1 not a packet format" in message for message in messages)
        assert all(str(tmp_path.resolve()) in message for message in messages)
        assert screen.last_pcap in messages[-1] and Path(screen.last_pcap).is_absolute()
    expected = [packet for obj in objects if obj.key in bodies for packet in wire.decode(bodies[obj.key]).packets]
    for path in sorted(tmp_path.glob("hoshino-all-*.pcap")):
        with path.open("rb") as file:
            assert [bytes(data) for _, data in dpkt.pcap.Reader(file)] == expected


async def test_the_listing_refreshes_itself_and_a_delivered_selection_stays(
        s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    bodies = fill(s3_server, bucket)
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, 5)
        await select(pilot, screen, 0)
        chosen = table.objects[0]
        client = s3_server.client()
        client.delete_object(Bucket=bucket, Key=chosen.key)  # the node delivered it
        newer = wire.KeyMaker(PREFIX).make(ipaddress.IPv6Address(PEER))
        client.put_object(Bucket=bucket, Key=newer, Body=sample_packets()["udp"])
        # No key pressed: the inspector lists again by itself within a few seconds.
        await wait_for(pilot, lambda: any(obj.key == newer for obj in table.objects), timeout=10)
        kept = table.selected()
        assert kept is not None and kept.key == chosen.key and kept.gone
        assert screen.dissections[0].packet == wire.decode(bodies[chosen.key]).packets[0]
        status = str(screen.query_one("#inspector-status", Static).content)
        assert "failed" not in status and "5 waiting" in status


async def test_an_object_delivered_before_it_was_read_is_not_a_failure(
        s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    fill(s3_server, bucket)
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, 5)
        await select(pilot, screen, 0)
        target = table.objects[1]
        s3_server.client().delete_object(Bucket=bucket, Key=target.key)
        table.move_cursor(row=1)
        tree = screen.query_one(LayerTree)
        await wait_for(pilot, lambda: "delivered and deleted before its bytes could be read" in str(
            tree.root.children[0].label) if tree.root.children else False)
        assert screen.query_one(HexView).placeholder == "Its bytes were never read."
        assert "failed" not in str(screen.query_one("#inspector-status", Static).content)
        assert not [n for n in app._notifications if n.severity == "error"]


async def open_inspector(pilot: Pilot[None], node: RecordingNode) -> InspectorScreen:
    await wait_for(pilot, lambda: node.published == RECORDED)
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InspectorScreen))
    screen = pilot.app.screen
    assert isinstance(screen, InspectorScreen)
    table = screen.query_one(ObjectTable)
    await wait_for(pilot, lambda: bool(table.objects) and screen.current is not None)
    return screen


async def test_what_the_node_carried_is_listed_beside_the_bucket_and_filtered() -> None:
    app, node = replayed_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspector(pilot, node)
        table = screen.query_one(ObjectTable)
        await wait_for(pilot, lambda: any(obj.where == "bucket" for obj in table.objects))
        where = {obj.where for obj in table.objects}
        assert where == {"bucket", "sent", "received"}
        assert len(table.objects) == len(node.recent_objects())  # the waiting ones were sent by this node
        received = next(row for row, obj in enumerate(table.objects) if obj.where == "received")
        table.move_cursor(row=received)
        await wait_for(pilot, lambda: screen.current is not None and screen.current.where == "received")
        assert screen.dissections and screen.dissections[0].layer("IPv6").field("Destination").value == \
            str(node.address)

        await pilot.press("slash", *"echo-reply")
        await wait_for(pilot, lambda: screen.query_text == "echo-reply")
        shown = list(table.objects)
        assert 0 < len(shown) < screen.total
        assert all("echo-reply" in packet.summary for obj in shown for packet in screen._packets(obj)
                   if obj.key != (screen.current.key if screen.current else ""))
        assert "echo-reply" in str(screen.query_one("#inspector-status", Static).content)
        await pilot.press("enter", "escape")
        await wait_for(pilot, lambda: len(table.objects) == screen.total)
        assert not screen.query_text and isinstance(app.screen, InspectorScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, InspectorScreen)


async def test_nothing_selected_is_said_in_both_panes() -> None:
    app = HoshinoApp(config=Config(bucket="b"), store_factory=lambda: MemoryBucket(objects={}), inspect_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        await wait_for(pilot, lambda: screen.listed_at is not None)
        tree = screen.query_one(LayerTree)
        assert str(tree.root.children[0].label).startswith("Nothing selected: the bucket holds no object")
        assert screen.query_one(HexView).placeholder == "Nothing selected."


async def test_at_80_by_24_the_tree_and_the_dump_share_the_width() -> None:
    app, node = replay_app(DEMO, speed=0)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_inspector(pilot, node)
        tree, hex_view = screen.query_one(LayerTree), screen.query_one(HexView)
        await pilot.pause()
        assert tree.size.width >= 30
        assert hex_view.per_line == 8
        assert tree.region.right <= hex_view.region.x and hex_view.region.right <= 80


def test_inspector_snapshot(snap_compare: Any) -> None:
    app, node = replayed_app()

    async def settle(pilot: Pilot[None]) -> None:
        screen = await open_inspector(pilot, node)
        table = screen.query_one(ObjectTable)
        await wait_for(pilot, lambda: any(obj.where == "bucket" for obj in table.objects))
        # A TCP segment that carries data: the richest decode the recording holds.
        row = next(row for row, obj in enumerate(table.objects) if obj.where == "received"
                   and "TCP" in screen._packets(obj)[0].summary and "len=0" not in screen._packets(obj)[0].summary)
        table.move_cursor(row=row)
        await wait_for(pilot, lambda: screen.current is not None and screen.current.key == table.objects[row].key)
        await pilot.press("tab", *["down"] * 14)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


async def test_an_operators_network_screen_shows_every_inbox_backlog(s3_server: S3Server, bucket: str,
                                                                     tmp_path: Path) -> None:
    """With the inspector alone (an operator's credentials, no node), n lists the whole bucket by inbox."""
    fill(s3_server, bucket)
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=f"{PREFIX}junk", Body=b"not a key the agents make")
    app = inspector_app(s3_server, bucket, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NetworkScreen) and app.screen.inboxes is not None)
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        assert [(line.destination, line.waiting) for line in screen.inboxes or []] == \
            [(PEER, 4), (LOCAL, 1), (NOT_A_NODE_KEY, 1)]
        table = screen.query_one("#network-inboxes", DataTable)
        assert table.row_count == 3 and str(table.border_subtitle) == "6 objects waiting"
        assert not screen.query_one("#network-nodes").display  # no node: no pages to read
        assert "inboxes" in str(screen.query_one("#network-status", Static).render())


async def test_a_bucket_that_refuses_its_listing_is_said_so_on_the_network_screen(tmp_path: Path) -> None:
    class Refusing(MemoryBucket):
        def list_objects(self, prefix: str = "", max_keys: int = 1000) -> Any:
            raise PermissionError("AccessDenied")

    app = HoshinoApp(config=Config(bucket="b"), store_factory=Refusing, inspect_only=True, pcap_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NetworkScreen) and app.screen.inboxes is not None)
        table = app.screen.query_one("#network-inboxes", DataTable)
        assert str(table.border_subtitle) == "cannot list: AccessDenied" and table.row_count == 0
