"""What the tunnel reads of a packet: the fixed 40-byte IPv6 header, checked in constant time.

Nothing on the path between the device and the bucket runs a decoder whose cost a sender controls:
the verdicts below read the fixed header only. The layered decode (agent.dissect) is for people,
and runs only when a front end asks for packet events.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from dataclasses import dataclass

from agent.events import SNAPLEN, Direction, PacketSeen, Verdict

IPV6_HEADER = 40
_HEADER = struct.Struct("!IHBB16s16s")


class PacketError(ValueError):
    """Bytes that are not a well-formed IPv6 packet; args[0] is a short reason label."""


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed IPv6 header of a packet whose payload length matches its size."""

    source: ipaddress.IPv6Address
    destination: ipaddress.IPv6Address
    next_header: int
    length: int


def parse_header(data: bytes | memoryview) -> Header:
    """Read the fixed header; raise PacketError('not_ipv6' or 'malformed'). Constant time."""
    if not data or data[0] >> 4 != 6:
        raise PacketError("not_ipv6")
    if len(data) < IPV6_HEADER:
        raise PacketError("malformed")
    _, payload_length, next_header, _, source, destination = _HEADER.unpack_from(data)
    if payload_length + IPV6_HEADER != len(data):  # also refuses jumbograms (payload length 0)
        raise PacketError("malformed")
    return Header(ipaddress.IPv6Address(source), ipaddress.IPv6Address(destination), next_header, len(data))


def egress_verdict(header: Header, network: ipaddress.IPv6Network, own: ipaddress.IPv6Address) -> str:
    """Why a packet from the device must not be sent, or '' when it may be."""
    destination = header.destination
    if destination.is_multicast:
        return "multicast"
    if destination.is_link_local:
        return "link_local"
    if destination == own:
        return "own_address"
    if destination not in network:
        return "outside_network"
    if header.source != own:
        return "foreign_source"
    return ""


def ingress_verdict(
    header: Header,
    own: ipaddress.IPv6Address,
    network: ipaddress.IPv6Network,
    mtu: int,
    sender: ipaddress.IPv6Address | None = None,
) -> str:
    """Why a packet from the bucket must not be delivered, or '' when it may be.

    sender is the authenticated sender of a sealed object: its packets must come from it.
    """
    if header.destination != own:
        return "wrong_destination"
    if header.source not in network:
        return "foreign_source"
    if sender is not None and header.source != sender:
        return "spoofed_source"
    if header.length > mtu:
        return "too_long"
    return ""


def seen(data: bytes, direction: Direction, key: str, verdict: Verdict, reason: str = "") -> PacketSeen:
    """The event that tells a front end about a packet: its summary comes from the one decoder.

    The decoder is imported here, when a front end first asks: a headless node never loads it.
    """
    from agent.dissect import dissect

    decoded = dissect(data, checksums=False)
    source = destination = ""
    if decoded.is_ipv6:
        ip = decoded.layers[0]
        source, destination = str(ip.field("Source").value), str(ip.field("Destination").value)
    return PacketSeen(
        time.time(), direction, source, destination, decoded.protocol, decoded.summary, len(data), key,
        verdict, reason, bytes(data[:SNAPLEN]),
    )
