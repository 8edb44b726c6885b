"""Packets, read with dpkt: classify what leaves, check what arrives, summarize both in one line."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

import dpkt

from agent.events import SNAPLEN, Direction, PacketSeen, Verdict

IPV6_HEADER = 40

ICMP6_NAMES = {
    1: "dest-unreachable",
    2: "packet-too-big",
    3: "time-exceeded",
    4: "param-problem",
    128: "echo-request",
    129: "echo-reply",
    130: "mld-query",
    131: "mld-report",
    133: "router-solicitation",
    134: "router-advertisement",
    135: "neighbor-solicitation",
    136: "neighbor-advertisement",
    143: "mld2-report",
}
TCP_FLAGS = [
    (dpkt.tcp.TH_SYN, "SYN"),
    (dpkt.tcp.TH_FIN, "FIN"),
    (dpkt.tcp.TH_RST, "RST"),
    (dpkt.tcp.TH_PUSH, "PSH"),
    (dpkt.tcp.TH_ACK, "ACK"),
    (dpkt.tcp.TH_URG, "URG"),
]


class PacketError(ValueError):
    """A packet that is not well-formed IPv6; its args[0] is a short reason label."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A parsed IPv6 packet and what a person wants to read of it."""

    source: ipaddress.IPv6Address
    destination: ipaddress.IPv6Address
    protocol: str
    summary: str
    length: int
    data: bytes = field(repr=False, default=b"")


def parse(data: bytes) -> Packet:
    """Parse an IPv6 packet; raise PacketError('not_ipv6' or 'malformed') otherwise."""
    if not data or data[0] >> 4 != 6:
        raise PacketError("not_ipv6")
    if len(data) < IPV6_HEADER:
        raise PacketError("malformed")
    try:
        ip = dpkt.ip6.IP6(data)
        if ip.plen + IPV6_HEADER != len(data):
            raise PacketError("malformed")
        protocol, summary = _describe(ip)
    except PacketError:
        raise
    except Exception:  # hostile bytes can trip any of dpkt's parsers: all of it is "malformed"
        raise PacketError("malformed") from None
    return Packet(
        ipaddress.IPv6Address(ip.src), ipaddress.IPv6Address(ip.dst), protocol, summary, len(data), data
    )


def _describe(ip: dpkt.ip6.IP6) -> tuple[str, str]:
    """Name the upper-layer protocol and decode it in one line."""
    layer = ip.data
    if isinstance(layer, dpkt.icmp6.ICMP6):
        name = ICMP6_NAMES.get(layer.type, f"type={layer.type}")
        text = f"ICMPv6 {name}"
        if layer.type in (128, 129) and isinstance(layer.data, dpkt.icmp6.ICMP6.Echo):
            text += f" id={layer.data.id} seq={layer.data.seq}"
        elif layer.code:
            text += f" code={layer.code}"
        return "ICMPv6", text
    if isinstance(layer, dpkt.tcp.TCP):
        flags = ",".join(name for bit, name in TCP_FLAGS if layer.flags & bit)
        text = (
            f"TCP {layer.sport}->{layer.dport} [{flags}] seq={layer.seq} ack={layer.ack} "
            f"win={layer.win} len={len(layer.data)}"
        )
        return "TCP", text
    if isinstance(layer, dpkt.udp.UDP):
        return "UDP", f"UDP {layer.sport}->{layer.dport} len={len(layer.data)}"
    number = ip.p if hasattr(ip, "p") else ip.nxt
    return f"proto-{number}", f"IPv6 next-header={number} len={ip.plen}"


def egress_verdict(
    packet: Packet, network: ipaddress.IPv6Network, own: ipaddress.IPv6Address
) -> str:
    """Why a packet from the device must not be sent, or '' when it may be."""
    destination = packet.destination
    if destination.is_multicast:
        return "multicast"
    if destination.is_link_local:
        return "link_local"
    if destination == own:
        return "own_address"
    if destination not in network:
        return "outside_network"
    return ""


def ingress_verdict(packet: Packet, own: ipaddress.IPv6Address, mtu: int) -> str:
    """Why a packet from the bucket must not be delivered, or '' when it may be."""
    if packet.destination != own:
        return "wrong_destination"
    if packet.length > mtu:
        return "too_long"
    return ""


def describe_raw(data: bytes) -> str:
    """A one-line description of bytes that did not parse as IPv6."""
    if data and data[0] >> 4 == 4:
        return f"IPv4 packet, {len(data)} bytes"
    return f"{len(data)} bytes: {data[:8].hex()}"


def seen(packet: Packet, direction: Direction, key: str, verdict: Verdict, reason: str = "") -> PacketSeen:
    """The event that tells a front end about this packet."""
    return PacketSeen(
        time.time(), direction, packet.source.compressed, packet.destination.compressed, packet.protocol,
        packet.summary, packet.length, key, verdict, reason, packet.data[:SNAPLEN],
    )


def seen_raw(data: bytes, direction: Direction, key: str, verdict: Verdict, reason: str) -> PacketSeen:
    """The event for bytes that are not a packet we could parse."""
    return PacketSeen(
        time.time(), direction, "", "", "other", describe_raw(data), len(data), key, verdict, reason, data[:SNAPLEN]
    )
