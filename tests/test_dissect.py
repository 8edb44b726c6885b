"""agent.dissect: layers, field values, field offsets that point at the right bytes, and the one-line
summary that agrees with the tree for any packet."""

from __future__ import annotations

import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import packets
from agent.dissect import Dissection, dissect
from agent.lab.recorded import LOCAL, PEER, echo, router_solicitation, tcp, udp


def assert_offsets_within(dissection: Dissection) -> None:
    for layer in dissection.layers:
        assert layer.offset >= 0 and layer.offset + layer.length <= len(dissection.packet), layer
        for field in layer.fields:
            assert layer.offset <= field.offset
            assert field.offset + field.length <= len(dissection.packet), field


def test_echo_request_fields_and_their_bytes() -> None:
    packet = echo(LOCAL, PEER, 7, 3, payload=b"hoshino-ping")
    decoded = dissect(packet)
    assert decoded.names == ["IPv6", "ICMPv6", "Data"]
    assert decoded.problems == ()
    ip = decoded.layer("IPv6")
    assert ip.field("Version").value == 6
    assert ip.field("Payload length").value == len(packet) - 40
    assert ip.field("Next header").text == "58 (ICMPv6)"
    assert ip.field("Hop limit").value == 64
    source = ip.field("Source")
    assert source.value == ipaddress.IPv6Address(LOCAL).compressed
    assert packet[source.offset:source.offset + source.length] == ipaddress.IPv6Address(LOCAL).packed
    icmp = decoded.layer("ICMPv6")
    assert (icmp.offset, icmp.length) == (40, 8)
    assert icmp.field("Type").text == "128 (echo-request)"
    assert icmp.field("Identifier").value == 7
    assert icmp.field("Sequence").value == 3
    seq = icmp.field("Sequence")
    assert struct.unpack("!H", packet[seq.offset:seq.offset + 2])[0] == 3
    assert decoded.layer("Data").field("Data").value == b"hoshino-ping"
    assert decoded.summary == "ICMPv6 echo-request id=7 seq=3"
    assert_offsets_within(decoded)


def test_tcp_syn_with_options() -> None:
    packet = tcp(LOCAL, PEER, 51234, 8081, dpkt.tcp.TH_SYN, 1_000_000, mss=1440)
    decoded = dissect(packet)
    assert decoded.names == ["IPv6", "TCP"]
    segment = decoded.layer("TCP")
    assert segment.field("Source port").value == 51234
    assert segment.field("Destination port").value == 8081
    assert segment.field("Sequence number").value == 1_000_000
    assert segment.field("Flags").text == "0x002 [SYN]"
    assert segment.field("Header length").value == 28
    assert segment.field("Option MSS").text == "MSS 1440"
    mss = segment.field("Option MSS")
    assert packet[mss.offset:mss.offset + mss.length] == b"\x02\x04\x05\xa0"
    assert segment.field("Option Window scale").text == "Window scale 7 (x128)"
    assert decoded.summary == "TCP 51234->8081 [SYN] seq=1000000 ack=0 win=64800 len=0"
    assert decoded.problems == ()
    assert_offsets_within(decoded)


def test_udp_datagram_and_payload() -> None:
    packet = udp(LOCAL, PEER, 5353, 5353, b"hoshino udp datagram")
    decoded = dissect(packet)
    assert decoded.names == ["IPv6", "UDP", "Payload"]
    datagram = decoded.layer("UDP")
    assert datagram.field("Length").value == 28
    payload = decoded.layer("Payload")
    assert (payload.offset, payload.length) == (48, 20)
    assert decoded.summary == "UDP 5353->5353 len=20"
    assert decoded.problems == ()


def test_extension_headers_are_walked_with_offsets() -> None:
    inner = bytes(dpkt.udp.UDP(sport=1, dport=2, ulen=12, data=b"abcd"))
    hop_by_hop = bytes([60, 0, 5, 2, 0, 0, 1, 0])  # next: dest opts; Router Alert; PadN
    destination = bytes([17, 0, 1, 4, 0, 0, 0, 0])  # next: UDP; PadN of 4
    payload = hop_by_hop + destination + inner
    header = struct.pack("!IHBB", 6 << 28, len(payload), 0, 64)
    packet = header + ipaddress.IPv6Address(LOCAL).packed + ipaddress.IPv6Address(PEER).packed + payload
    decoded = dissect(packet)
    assert decoded.names == ["IPv6", "Hop-by-Hop Options", "Destination Options", "UDP", "Payload"]
    hbh = decoded.layer("Hop-by-Hop Options")
    assert (hbh.offset, hbh.length) == (40, 8)
    assert hbh.summary == "Router Alert"
    assert decoded.layer("Destination Options").offset == 48
    assert decoded.layer("UDP").offset == 56
    assert "UDP checksum is wrong" in decoded.problems  # the UDP sum was computed without a pseudo-header


def test_fragment_header_stops_upper_decode_for_later_fragments() -> None:
    fragment = struct.pack("!BBHI", 17, 0, (185 << 3) | 1, 0xCAFE)
    body = b"x" * 16
    header = struct.pack("!IHBB", 6 << 28, len(fragment) + len(body), 44, 64)
    packet = header + ipaddress.IPv6Address(LOCAL).packed + ipaddress.IPv6Address(PEER).packed + fragment + body
    decoded = dissect(packet)
    assert decoded.names == ["IPv6", "Fragment", "Fragment data"]
    frag = decoded.layer("Fragment")
    assert frag.field("Fragment offset").value == 185
    assert frag.field("More fragments").value == 1
    assert frag.field("Identification").value == 0xCAFE


def test_router_solicitation_decodes() -> None:
    decoded = dissect(router_solicitation("fe80::1"))
    assert decoded.layer("ICMPv6").field("Type").text == "133 (router-solicitation)"
    assert decoded.layer("IPv6").field("Destination").value == "ff02::2"
    assert decoded.problems == ()


@pytest.mark.parametrize("cut", [10, 44, 50])
def test_truncated_packets_are_reported_not_raised(cut: int) -> None:
    packet = tcp(LOCAL, PEER, 1, 2, dpkt.tcp.TH_SYN, 1)[:cut]
    decoded = dissect(packet)
    assert decoded.problems
    assert sum(layer.length for layer in decoded.layers) <= len(packet)
    assert_offsets_within(decoded)


def test_corrupted_checksum_is_reported() -> None:
    packet = bytearray(echo(LOCAL, PEER, 1, 1))
    packet[42] ^= 0xFF
    assert dissect(bytes(packet)).problems == ("ICMPv6 checksum is wrong",)


def test_payload_length_beyond_packet_is_reported() -> None:
    packet = bytearray(udp(LOCAL, PEER, 1, 2, b"abc"))
    packet[4:6] = struct.pack("!H", 200)
    decoded = dissect(bytes(packet))
    assert any("payload length says 200" in problem for problem in decoded.problems)


# IPv4: what a node sends to another's 100.64.0.0/10 address, or to the internet through an exit node.

A4, B4 = ipaddress.IPv4Address("100.64.0.10"), ipaddress.IPv4Address("198.51.100.1")


def ip4(upper: dpkt.Packet | bytes, proto: int, **fields: object) -> bytes:
    """An IPv4 packet as dpkt builds it: its header checksum and its TCP or UDP checksum filled in by dpkt."""
    return bytes(dpkt.ip.IP(src=A4.packed, dst=B4.packed, p=proto, ttl=63, id=0x1234, data=upper, **fields))


def test_ipv4_echo_request_fields_and_their_bytes() -> None:
    packet = ip4(dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=7, seq=3, data=b"hoshino-ping")), 1, df=1)
    decoded = dissect(packet)
    assert decoded.names == ["IPv4", "ICMP", "Data"]
    assert decoded.problems == ()
    assert (decoded.version, decoded.protocol, decoded.summary) == (4, "ICMP", "ICMP echo-request id=7 seq=3")
    ip = decoded.layer("IPv4")
    assert ip.summary == f"{A4} -> {B4}, TTL 63"
    assert [ip.field(name).text for name in ("Version", "Header length", "Total length", "Identification", "Flags",
                                             "Fragment offset", "TTL", "Protocol")] == [
        "4", "20 bytes (5)", str(len(packet)), "0x1234", "0x2 [DF]", "0 (0 bytes)", "63", "1 (ICMP)"]
    for name, value in (("Source", A4), ("Destination", B4)):
        found = ip.field(name)
        assert found.value == str(value) and packet[found.offset:found.offset + found.length] == value.packed
    icmp = decoded.layer("ICMP")
    assert (icmp.offset, icmp.length) == (20, 8)
    seq = icmp.field("Sequence")
    assert struct.unpack("!H", packet[seq.offset:seq.offset + 2])[0] == 3
    assert decoded.layer("Data").field("Data").value == b"hoshino-ping"
    line = packets.seen(packet, "out", "", "sent")  # the packet table's line: the same decoder
    assert (line.protocol, line.summary, line.source, line.destination) == (
        "ICMP", "ICMP echo-request id=7 seq=3", str(A4), str(B4))
    assert_offsets_within(decoded)


def test_ipv4_tcp_syn_with_its_options_and_checksum() -> None:
    syn = dpkt.tcp.TCP(sport=51234, dport=443, seq=1_000_000, flags=dpkt.tcp.TH_SYN, win=64240, off=7,
                       opts=b"\x02\x04\x05\xb4\x01\x03\x03\x07")  # MSS 1460, NOP, window scale 7
    decoded = dissect(ip4(syn, 6))
    assert decoded.names == ["IPv4", "TCP"]
    assert decoded.problems == ()  # dpkt's checksum over IPv4's pseudo-header holds
    segment = decoded.layer("TCP")
    assert segment.offset == 20
    assert segment.field("Option MSS").text == "MSS 1460"
    assert decoded.summary == "TCP 51234->443 [SYN] seq=1000000 ack=0 win=64240 len=0"
    broken = bytearray(ip4(syn, 6))
    broken[30] ^= 0x01  # a bit of the window
    assert dissect(bytes(broken)).problems == ("TCP checksum is wrong",)


def test_ipv4_udp_with_and_without_a_checksum() -> None:
    datagram = dpkt.udp.UDP(sport=5353, dport=53, data=b"hoshino udp datagram")
    datagram.ulen = 8 + len(datagram.data)
    packet = ip4(datagram, 17)
    decoded = dissect(packet)
    assert (decoded.names, decoded.summary, decoded.problems) == (["IPv4", "UDP", "Payload"], "UDP 5353->53 len=20", ())
    unsummed = bytearray(packet)
    unsummed[26:28] = b"\0\0"  # zero: no checksum was computed, which IPv4 allows (RFC 768)
    assert dissect(bytes(unsummed)).problems == ()
    unsummed[30] ^= 0xFF
    assert dissect(bytes(unsummed)).problems == ()


def test_ipv4_fragmentation_needed_shows_the_next_hop_mtu() -> None:
    invoking = ip4(dpkt.tcp.TCP(sport=1, dport=2), 6)[:28]
    needed = dpkt.icmp.ICMP(type=3, code=4, data=b"\0\0\x05\xdc" + invoking)
    decoded = dissect(ip4(needed, 1))
    assert decoded.summary == "ICMP destination-unreachable mtu=1500"
    assert decoded.layer("ICMP").field("Next-hop MTU").value == 1500
    assert decoded.names == ["IPv4", "ICMP", "Invoking packet"]
    assert decoded.problems == ()


def test_ipv4_problems_are_reported_not_raised() -> None:
    packet = bytearray(ip4(dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1)), 1))
    packet[8] = 1  # the TTL, under an unchanged header checksum
    assert dissect(bytes(packet)).problems == ("IPv4 header checksum is wrong",)
    assert "(wrong)" in dissect(bytes(packet)).layer("IPv4").field("Header checksum").text
    packet[8] = 63
    long = bytearray(packet)
    long[2:4] = struct.pack("!H", 200)
    assert any("total length says 200" in problem for problem in dissect(bytes(long)).problems)
    later = dissect(ip4(b"x" * 16, 17, offset=185))  # a later fragment: no UDP header in it
    assert later.names == ["IPv4", "Fragment data"]
    assert later.summary == "IPv4 protocol=17 len=36, fragment at 1480"
    assert later.protocol == "proto-17"
    for cut in (19, 22, 27):
        truncated = dissect(bytes(packet[:cut]))
        assert truncated.problems
        assert_offsets_within(truncated)
    longer = bytes([0x46, 0]) + struct.pack("!H", len(packet) + 4) + bytes(packet[4:20]) + b"\x01\x01\x01\x00"
    options = dissect(longer + bytes(packet[20:]), checksums=False)  # four bytes of options: NOP, NOP, NOP, EOL
    assert options.layer("IPv4").field("Options").length == 4
    assert (options.layer("ICMP").offset, options.problems) == (24, ())


# The packet table's one-liner and the inspector's tree: one decoder, so for any packet they agree.

FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
"""TCP's flag bits, lowest first, as the header holds them."""
ICMP6_NAMES = {1: "destination-unreachable", 2: "packet-too-big", 128: "echo-request", 129: "echo-reply",
               133: "router-solicitation", 135: "neighbor-solicitation"}
SOURCE, DESTINATION = ipaddress.IPv6Address(LOCAL), ipaddress.IPv6Address(PEER)


ICMP4_NAMES = {0: "echo-reply", 3: "destination-unreachable", 8: "echo-request", 11: "time-exceeded"}


@st.composite
def generated_packets(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """A TCP, UDP or ICMP packet of either family built byte by byte (no decoder involved), an IPv6 one
    perhaps behind a hop-by-hop header, and what it holds."""
    family = draw(st.sampled_from([6, 4]))
    kind = draw(st.sampled_from(["TCP", "UDP", "ICMPv6" if family == 6 else "ICMP"]))
    payload = draw(st.binary(max_size=48))
    ports = (draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    truth: dict[str, object] = {"protocol": kind, "ports": ports, "family": family}
    if kind == "TCP":
        flags = draw(st.integers(0, 255))
        truth["flags"] = [name for bit, name in enumerate(FLAG_NAMES) if flags & (1 << bit)]
        upper = struct.pack("!HHIIBBHHH", *ports, draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)),
                            5 << 4, flags, draw(st.integers(0, 65535)), 0, 0) + payload
        number = 6
    elif kind == "UDP":
        upper, number = struct.pack("!HHHH", *ports, 8 + len(payload), 0) + payload, 17
    else:
        names = ICMP6_NAMES if family == 6 else ICMP4_NAMES
        icmp_type = draw(st.sampled_from(sorted(names)))
        truth["type"] = names[icmp_type]
        upper = struct.pack("!BBH", icmp_type, draw(st.integers(0, 255)), 0) + draw(st.binary(min_size=20, max_size=48))
        number = 58 if family == 6 else 1
    if family == 4:
        header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(upper), 0, 0, 64, number, 0) + A4.packed + B4.packed
        return header + upper, truth
    if draw(st.booleans()):  # hop-by-hop options: one PadN of four bytes
        upper, number = struct.pack("!BBBB4x", number, 0, 1, 4) + upper, 0
    header = struct.pack("!IHBB", 6 << 28, len(upper), number, 64) + SOURCE.packed + DESTINATION.packed
    return header + upper, truth


@settings(max_examples=300, deadline=None)
@given(generated_packets())
def test_the_one_line_summary_and_the_layer_tree_agree(generated: tuple[bytes, dict[str, object]]) -> None:
    data, truth = generated
    line = packets.seen(data, "out", "", "sent")  # what the packet table shows
    tree = dissect(data)  # what the inspector and the detail screen show
    upper = tree.layer(str(truth["protocol"]))
    assert line.protocol == tree.protocol == truth["protocol"]
    ip = tree.layer(f"IPv{truth['family']}")
    assert (line.source, line.destination) == (ip.field("Source").value, ip.field("Destination").value) \
        == ((str(SOURCE), str(DESTINATION)) if truth["family"] == 6 else (str(A4), str(B4)))
    if truth["protocol"] in ("TCP", "UDP"):
        ports = (upper.field("Source port").value, upper.field("Destination port").value)
        assert ports == truth["ports"]
        assert line.summary.startswith(f"{truth['protocol']} {ports[0]}->{ports[1]} ")
    if truth["protocol"] == "TCP":
        shown = line.summary.split("[", 1)[1].split("]", 1)[0]
        in_tree = upper.field("Flags").text.split("[", 1)[1].rstrip("]")
        assert shown == in_tree == ",".join(truth["flags"])  # type: ignore[arg-type]
    if truth["protocol"] in ("ICMPv6", "ICMP"):
        assert upper.field("Type").text.endswith(f"({truth['type']})")
        assert line.summary.startswith(f"{truth['protocol']} {truth['type']}")
