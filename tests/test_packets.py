"""The fixed-header checks on both paths, and packet events whose summary comes from the one decoder."""

import ipaddress

import dpkt
import pytest
from packets_factory import A, B, echo_request, ip6, tcp_syn, udp

from agent import packets
from agent.config import DEFAULT_NETWORK

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
OUTSIDER = ipaddress.IPv6Address("2001:db8::99")


def test_header_is_read_from_the_fixed_40_bytes():
    header = packets.parse_header(tcp_syn(A, B))
    assert (header.source, header.destination, header.next_header) == (A, B, 6)
    assert header.length == len(tcp_syn(A, B))


def test_packet_for_a_peer_is_sent():
    assert packets.egress_verdict(packets.parse_header(tcp_syn(A, B)), NETWORK, A) == ""


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("ff02::2", "multicast"),
        ("fe80::1", "link_local"),
        ("2001:db8::1", "outside_network"),
        (str(A), "own_address"),
    ],
)
def test_packets_not_for_the_tunnel_are_ignored(destination, reason):
    header = packets.parse_header(echo_request(A, ipaddress.IPv6Address(destination)))
    assert packets.egress_verdict(header, NETWORK, A) == reason


def test_egress_refuses_a_source_that_is_not_this_node():
    header = packets.parse_header(udp(B, ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::c")))
    assert packets.egress_verdict(header, NETWORK, A) == "foreign_source"


def test_ipv4_is_not_ipv6():
    ipv4 = bytes(dpkt.ip.IP(src=b"\x7f\x00\x00\x01", dst=b"\x7f\x00\x00\x01", p=17, data=b"x" * 8))
    with pytest.raises(packets.PacketError, match="not_ipv6"):
        packets.parse_header(ipv4)
    event = packets.seen(ipv4, "out", "", "ignored", "not_ipv6")
    assert (event.protocol, event.summary) == ("IPv4", f"IPv4 packet, {len(ipv4)} bytes")


@pytest.mark.parametrize("data", [b"\x60" + b"\x00" * 10, echo_request()[:-3], echo_request() + b"extra"])
def test_truncated_or_padded_packets_are_malformed(data):
    with pytest.raises(packets.PacketError, match="malformed"):
        packets.parse_header(data)


def test_ingress_checks_destination_source_sender_and_length():
    header = packets.parse_header(udp(A, B, b"x" * 1500))
    assert packets.ingress_verdict(header, B, NETWORK, 9000) == ""
    assert packets.ingress_verdict(header, A, NETWORK, 9000) == "wrong_destination"
    assert packets.ingress_verdict(header, B, NETWORK, 1280) == "too_long"
    assert packets.ingress_verdict(header, B, NETWORK, 9000, sender=A) == ""
    assert packets.ingress_verdict(header, B, NETWORK, 9000, sender=OUTSIDER) == "spoofed_source"
    from_outside = packets.parse_header(udp(OUTSIDER, B))
    assert packets.ingress_verdict(from_outside, B, NETWORK, 9000) == "foreign_source"


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
