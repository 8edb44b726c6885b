"""Pilot tests of the inspector against the real local S3 server: listing, decoding, pcap export."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dpkt
from pilot_helpers import wait_for
from textual.pilot import Pilot

from agent import wire
from agent.config import Config
from agent.lab import S3Server
from agent.lab.recorded import LOCAL, PEER, echo, sample_packets
from agent.transport import open_bucket
from hoshino_tui.app import HoshinoApp
from hoshino_tui.screens.inspector import InspectorScreen
from hoshino_tui.widgets.hex_view import HexView
from hoshino_tui.widgets.layer_tree import LayerTree
from hoshino_tui.widgets.object_table import ObjectTable

SIZE = (140, 44)
PREFIX = "t/"


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
