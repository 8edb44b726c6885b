"""Classification of real packets built with dpkt."""

import ipaddress

import dpkt
import pytest
from packets_factory import A, B, echo_request, ip6, tcp_syn, udp

from agent import packets
from agent.config import DEFAULT_NETWORK

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)


def test_summaries_read_like_a_sniffer():
    assert packets.parse(echo_request()).summary == "ICMPv6 echo-request id=7 seq=3"
    assert packets.parse(tcp_syn()).summary == "TCP 51234->8081 [SYN] seq=1000 ack=0 win=64800 len=0"
    assert packets.parse(udp()).summary == "UDP 5353->5353 len=5"


def test_packet_for_a_peer_is_sent():
    assert packets.egress_verdict(packets.parse(tcp_syn(A, B)), NETWORK, A) == ""


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
    packet = packets.parse(echo_request(A, ipaddress.IPv6Address(destination)))
    assert packets.egress_verdict(packet, NETWORK, A) == reason


def test_ipv4_is_not_ipv6():
    ipv4 = bytes(dpkt.ip.IP(src=b"\x7f\x00\x00\x01", dst=b"\x7f\x00\x00\x01", p=17, data=b"x" * 8))
    with pytest.raises(packets.PacketError, match="not_ipv6"):
        packets.parse(ipv4)
    assert packets.describe_raw(ipv4).startswith("IPv4 packet")


@pytest.mark.parametrize("data", [b"\x60" + b"\x00" * 10, echo_request()[:-3], echo_request() + b"extra"])
def test_truncated_or_padded_packets_are_malformed(data):
    with pytest.raises(packets.PacketError, match="malformed"):
        packets.parse(data)


def test_ingress_checks_destination_and_length():
    packet = packets.parse(udp(A, B, b"x" * 1500))
    assert packets.ingress_verdict(packet, B, 9000) == ""
    assert packets.ingress_verdict(packet, A, 9000) == "wrong_destination"
    assert packets.ingress_verdict(packet, B, 1280) == "too_long"


def test_unknown_upper_layer_is_named():
    raw = ip6(A, B, b"opaque", 253)  # 253: reserved for experiments
    parsed = packets.parse(raw)
    assert parsed.protocol == "proto-253"
    assert parsed.summary == "IPv6 next-header=253 len=6"
