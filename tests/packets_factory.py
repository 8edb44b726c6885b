"""Real IPv6 packets built with dpkt, for tests."""

from __future__ import annotations

import ipaddress

import dpkt

A = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::a")
B = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::b")


def ip6(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, upper: dpkt.Packet | bytes, nxt: int) -> bytes:
    packet = dpkt.ip6.IP6(src=src.packed, dst=dst.packed, nxt=nxt, hlim=64, data=upper)
    packet.plen = len(bytes(upper))
    return bytes(packet)


def echo_request(src: ipaddress.IPv6Address = A, dst: ipaddress.IPv6Address = B, ident: int = 7, seq: int = 3) -> bytes:
    echo = dpkt.icmp6.ICMP6.Echo(id=ident, seq=seq, data=b"ping payload")
    return ip6(src, dst, dpkt.icmp6.ICMP6(type=128, code=0, data=echo), dpkt.ip.IP_PROTO_ICMP6)


def tcp_syn(src: ipaddress.IPv6Address = A, dst: ipaddress.IPv6Address = B) -> bytes:
    segment = dpkt.tcp.TCP(sport=51234, dport=8081, seq=1000, ack=0, flags=dpkt.tcp.TH_SYN, win=64800)
    return ip6(src, dst, segment, dpkt.ip.IP_PROTO_TCP)


def udp(src: ipaddress.IPv6Address = A, dst: ipaddress.IPv6Address = B, payload: bytes = b"hello") -> bytes:
    datagram = dpkt.udp.UDP(sport=5353, dport=5353, data=payload)
    datagram.ulen = 8 + len(payload)
    return ip6(src, dst, datagram, dpkt.ip.IP_PROTO_UDP)


A4 = ipaddress.IPv4Address("100.64.0.10")
B4 = ipaddress.IPv4Address("100.64.0.11")


def ip4(src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, upper: dpkt.Packet | bytes, proto: int) -> bytes:
    """An IPv4 packet; dpkt fills in the total length and the header checksum."""
    return bytes(dpkt.ip.IP(src=src.packed, dst=dst.packed, p=proto, ttl=64, data=upper))


def udp4(src: ipaddress.IPv4Address = A4, dst: ipaddress.IPv4Address = B4, payload: bytes = b"hello") -> bytes:
    datagram = dpkt.udp.UDP(sport=5353, dport=5353, data=payload)
    datagram.ulen = 8 + len(payload)
    return ip4(src, dst, datagram, dpkt.ip.IP_PROTO_UDP)
