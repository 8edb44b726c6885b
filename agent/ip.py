"""IP facts in one place: header sizes and layouts, versions, families, and the fixed-header check.

The receive and send paths read a packet's fixed header only (IPv6: 40 bytes; IPv4: 20 to 60), in
time that does not depend on what the rest of the packet says: no decoder whose cost a sender
controls runs between the bucket and the kernel.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_HEADER = 40
IPV6_FIXED = struct.Struct("!IHBB16s16s")
"""Version/class/flow, payload length, next header, hop limit, source, destination."""
IPV4_MIN_HEADER = 20
IPV4_MAX_HEADER = 60
IPV4_FIXED = struct.Struct("!BBHHHBBH4s4s")
"""Version/IHL, DSCP/ECN, total length, id, flags/fragment, TTL, protocol, checksum, source, destination."""

IPV4_NETWORK = ipaddress.IPv4Network("100.64.0.0/10")
"""Where nodes' IPv4 addresses live: shared address space (RFC 6598), as overlay networks use it."""
IPV4_HOST_BITS = 32 - IPV4_NETWORK.prefixlen
DEFAULT_ROUTES = (ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0"))

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class PacketError(ValueError):
    """Bytes that are not a well-formed IP packet; args[0] is a short reason label."""


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed header of an IPv4 or IPv6 packet whose length field matches its size."""

    version: int
    source: Address
    destination: Address
    protocol: int
    """IPv4's protocol, or IPv6's next header (the first extension header's number, if any)."""
    length: int


def version(data: bytes | memoryview) -> int:
    """The IP version nibble of a packet, 0 for no bytes."""
    return data[0] >> 4 if data else 0


def parse_header(data: bytes | memoryview) -> Header:
    """Read and check the fixed header; PacketError('not_ip', 'malformed' or 'bad_checksum') if it fails.

    Constant time: IPv6's 40 bytes, or IPv4's header of at most 60 (its checksum included).
    """
    kind = version(data)
    if kind == 6:
        return _ipv6_header(data)
    if kind == 4:
        return _ipv4_header(data)
    raise PacketError("not_ip")


def _ipv6_header(data: bytes | memoryview) -> Header:
    if len(data) < IPV6_HEADER:
        raise PacketError("malformed")
    _, payload_length, next_header, _, source, destination = IPV6_FIXED.unpack_from(data)
    if payload_length + IPV6_HEADER != len(data):  # also refuses jumbograms (payload length 0)
        raise PacketError("malformed")
    return Header(6, ipaddress.IPv6Address(source), ipaddress.IPv6Address(destination), next_header, len(data))


def _ipv4_header(data: bytes | memoryview) -> Header:
    if len(data) < IPV4_MIN_HEADER:
        raise PacketError("malformed")
    first, _, total_length, _, _, _, protocol, _, source, destination = IPV4_FIXED.unpack_from(data)
    header_length = (first & 0x0F) * 4
    if header_length < IPV4_MIN_HEADER or header_length > len(data) or total_length != len(data):
        raise PacketError("malformed")
    if ipv4_checksum(bytes(data[:header_length])) != 0:
        raise PacketError("bad_checksum")
    return Header(4, ipaddress.IPv4Address(source), ipaddress.IPv4Address(destination), protocol, len(data))


def ipv4_checksum(header: bytes) -> int:
    """The Internet checksum of an IPv4 header (RFC 1071): 0 for a header whose checksum field is right."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header[: len(header) // 2 * 2]))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def scope_reason(destination: Address) -> str:
    """Why a destination never crosses the bucket ('multicast', 'link_local', 'broadcast', ...), or ''."""
    if destination.is_multicast:
        return "multicast"
    if destination.is_link_local:
        return "link_local"
    if destination.is_loopback:
        return "loopback"
    if destination.is_unspecified:
        return "unspecified"
    if destination == _LIMITED_BROADCAST:
        return "broadcast"
    return ""


def derived_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    """A node's IPv4 address: 100.64.0.0/10 plus the low 22 bits of its IPv6 interface identifier."""
    return IPV4_NETWORK.network_address + (int(address) & ((1 << IPV4_HOST_BITS) - 1))


def node_of_derived(address: ipaddress.IPv4Address, network: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    """The node in network whose derived IPv4 address this is, when its interface identifier fits in
    22 bits (network::1 to network::3f:ffff): what a node without a peers file assumes."""
    return network.network_address + (int(address) - int(IPV4_NETWORK.network_address))


def parse_ipv4_node_address(text: str) -> ipaddress.IPv4Address:
    """An IPv4 address for a node: inside 100.64.0.0/10; ValueError says why not."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"not an IPv4 address: {text!r}") from None
    if address not in IPV4_NETWORK:
        raise ValueError(f"{address} is outside {IPV4_NETWORK}, where nodes' IPv4 addresses live")
    return address


def parse_prefix(text: str) -> Network:
    """An IPv4 or IPv6 prefix with no host bits set; ValueError says what to write instead."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"not a prefix: {text!r}: write ADDRESS/LENGTH, such as 192.0.2.0/24") from None
    raise ValueError(f"{text} has bits set after the prefix length: did you mean {loose}?")
