"""The fixed-header checks on both paths, and packet events whose summary comes from the one decoder."""

import ipaddress

import dpkt
import pytest
from packets_factory import A4, B4, A, B, echo_request, ip4, ip6, tcp_syn, udp, udp4

from agent import packets
from agent.config import DEFAULT_NETWORK
from agent.router import Route, Router

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
OUTSIDER = ipaddress.IPv6Address("2001:db8::99")
ROUTER_A = Router.unsealed(A, NETWORK)
ROUTER_B = Router.unsealed(B, NETWORK)


def test_header_is_read_from_the_fixed_40_bytes():
    header = packets.parse_header(tcp_syn(A, B))
    assert (header.version, header.source, header.destination, header.protocol) == (6, A, B, 6)
    assert header.length == len(tcp_syn(A, B))


def test_packet_for_a_peer_is_sent():
    assert packets.egress_verdict(packets.parse_header(tcp_syn(A, B)), ROUTER_A) == ("", Route(str(NETWORK), B))


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("ff02::2", "multicast"),
        ("fe80::1", "link_local"),
        ("2001:db8::1", "no_route"),
        (str(A), "own_address"),
    ],
)
def test_packets_not_for_the_tunnel_are_ignored(destination, reason):
    header = packets.parse_header(echo_request(A, ipaddress.IPv6Address(destination)))
    assert packets.egress_verdict(header, ROUTER_A) == (reason, None)


def test_egress_refuses_a_source_that_is_not_this_node():
    header = packets.parse_header(udp(B, ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::c")))
    assert packets.egress_verdict(header, ROUTER_A) == ("foreign_source", None)


def test_ipv4_header_is_read_and_its_node_found_from_the_derived_address():
    data = udp4(A4, B4)
    header = packets.parse_header(data)
    assert (header.version, header.source, header.destination, header.protocol) == (4, A4, B4, 17)
    assert packets.egress_verdict(header, ROUTER_A) == ("", Route("100.64.0.0/10", B))
    assert packets.ingress_verdict(header, ROUTER_B, 9000) == ""
    assert packets.ingress_verdict(header, ROUTER_A, 9000) == "not_routed_here"
    event = packets.seen(data, "out", "", "sent")
    assert (event.protocol, event.source, event.destination) == ("UDP", str(A4), str(B4))


@pytest.mark.parametrize(
    ("destination", "reason"),
    [("224.0.0.251", "multicast"), ("169.254.1.1", "link_local"), ("255.255.255.255", "broadcast"),
     ("127.0.0.1", "loopback"), ("198.51.100.1", "no_route"), (str(A4), "own_address")],
)
def test_ipv4_packets_not_for_the_tunnel_are_ignored(destination, reason):
    header = packets.parse_header(udp4(A4, ipaddress.IPv4Address(destination)))
    assert packets.egress_verdict(header, ROUTER_A) == (reason, None)


def test_ipv4_from_outside_the_shared_space_is_foreign():
    header = packets.parse_header(udp4(ipaddress.IPv4Address("198.51.100.1"), B4))
    assert packets.ingress_verdict(header, ROUTER_B, 9000) == "foreign_source"


def _with(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:19], "malformed"),                       # shorter than the fixed header
        (lambda d: _with(d, 0, b"\x44"), "malformed"),          # IHL 4: 16 bytes, less than the minimum
        (lambda d: _with(d, 0, b"\x4f"), "malformed"),          # IHL 15: 60 bytes, more than the packet holds
        (lambda d: d + b"extra", "malformed"),                  # total length less than the object holds
        (lambda d: d[:-1], "malformed"),                        # total length more than the object holds
        (lambda d: _with(d, 10, bytes([d[10] ^ 0xFF])), "bad_checksum"),
        (lambda d: _with(d, 8, b"\x01"), "bad_checksum"),       # TTL changed, checksum not
        (lambda d: b"\x50" + d[1:], "not_ip"),
        (lambda d: b"", "not_ip"),
    ],
)
def test_ipv4_fixed_header_checks(mangle, reason):
    with pytest.raises(packets.PacketError, match=reason):
        packets.parse_header(mangle(udp4(payload=b"x" * 20)))


def test_ipv4_header_with_options_is_read():
    packet = dpkt.ip.IP(src=A4.packed, dst=B4.packed, p=17, opts=b"\x01\x01\x01\x00", data=b"x" * 8)
    packet.hl = 6
    data = bytes(packet)
    assert data[0] == 0x46
    assert packets.parse_header(data).length == len(data)


def test_ipv4_checks_are_linear_for_a_large_packet():
    big = ip4(A4, B4, b"\x00" * 60000, 253)
    assert packets.parse_header(big).length == len(big)


@pytest.mark.parametrize("data", [b"\x60" + b"\x00" * 10, echo_request()[:-3], echo_request() + b"extra"])
def test_truncated_or_padded_packets_are_malformed(data):
    with pytest.raises(packets.PacketError, match="malformed"):
        packets.parse_header(data)


def test_ingress_checks_destination_source_sender_and_length():
    header = packets.parse_header(udp(A, B, b"x" * 1500))
    assert packets.ingress_verdict(header, ROUTER_B, 9000) == ""
    assert packets.ingress_verdict(header, ROUTER_A, 9000) == "not_routed_here"
    assert packets.ingress_verdict(header, ROUTER_B, 1280) == "too_long"
    assert packets.ingress_verdict(header, ROUTER_B, 9000, sender=A) == ""
    assert packets.ingress_verdict(header, ROUTER_B, 9000, sender=OUTSIDER) == "spoofed_source"
    from_outside = packets.parse_header(udp(OUTSIDER, B))
    assert packets.ingress_verdict(from_outside, ROUTER_B, 9000) == "foreign_source"


def test_events_read_like_a_sniffer():
    assert packets.seen(echo_request(), "out", "", "sent").summary == "ICMPv6 echo-request id=7 seq=3"
    syn = packets.seen(tcp_syn(), "out", "k", "sent")
    assert (syn.protocol, syn.source, syn.destination) == ("TCP", A.compressed, B.compressed)
    assert syn.summary == "TCP 51234->8081 [SYN] seq=1000 ack=0 win=64800 len=0"
    assert packets.seen(udp(), "in", "k", "delivered").summary == "UDP 5353->5353 len=5"


def test_unknown_upper_layer_is_named():
    event = packets.seen(ip6(A, B, b"opaque", 253), "out", "", "sent")  # 253: reserved for experiments
    assert event.protocol == "proto-253"
    assert event.summary == "IPv6 next-header=253 len=6"
