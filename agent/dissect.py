"""The one packet decoder: an IPv6 or IPv4 packet layer by layer, each field located by byte offset.

The inspector's tree and hex view, the packet table's one-line summaries and the agent's packet
events all come from here. Its cost is linear in the packet's size, whatever the bytes say.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import dpkt

from agent.ip import IPV4_FIXED, IPV4_MIN_HEADER, IPV6_FIXED, IPV6_HEADER, ipv4_checksum, version
from agent.wording import plural

_PROTOCOLS = {
    0: "Hop-by-Hop Options", 6: "TCP", 17: "UDP", 43: "Routing", 44: "Fragment", 50: "ESP", 51: "AH",
    58: "ICMPv6", 59: "No Next Header", 60: "Destination Options",
}
_PROTOCOLS4 = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 51: "AH"}
"""IPv4's protocol numbers: its own ICMP (1), not ICMPv6 (58)."""
_ICMP4_TYPES = {
    0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect", 8: "echo-request",
    11: "time-exceeded", 12: "parameter-problem", 13: "timestamp", 14: "timestamp-reply",
}
_ICMP6_TYPES = {
    1: "destination-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem",
    128: "echo-request", 129: "echo-reply", 130: "mld-query", 131: "mld-report", 132: "mld-done",
    133: "router-solicitation", 134: "router-advertisement", 135: "neighbor-solicitation",
    136: "neighbor-advertisement", 137: "redirect", 143: "mldv2-report",
}
_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
_TCP_OPTIONS = {
    0: "EOL", 1: "NOP", 2: "MSS", 3: "Window scale", 4: "SACK permitted", 5: "SACK", 8: "Timestamps",
}
_EXTENSIONS = {0, 43, 44, 51, 60}
"""Extension headers decoded in a chain (ESP, 50, hides what follows it)."""
MAX_EXTENSIONS = 16
"""More extension headers than any real packet carries: the rest is shown undecoded."""
UPPER_LAYERS = ("ICMPv6", "ICMP", "TCP", "UDP")


class _Fixed(NamedTuple):
    """The fixed IPv6 header, as dpkt.ip6.IP6 names its fields."""

    v_fc_flow: int
    plen: int
    nxt: int
    hlim: int
    src: bytes
    dst: bytes


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: its value, how to show it, and where its bytes are in the packet."""

    name: str
    value: int | str | bytes
    text: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Layer:
    """One protocol layer: a header or a payload, with its fields in packet order."""

    name: str
    summary: str
    offset: int
    length: int
    fields: tuple[Field, ...] = ()

    def field(self, name: str) -> Field:
        """The field called name; KeyError if the layer has none."""
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(f"{self.name} has no field {name!r}")


@dataclass(frozen=True, slots=True)
class Dissection:
    """A packet split into layers; problems lists what could not be decoded or did not check out."""

    packet: bytes
    layers: tuple[Layer, ...]
    problems: tuple[str, ...] = ()
    next_header: int = -1
    """IPv6's protocol number after the last extension header, or IPv4's protocol; -1 when the packet is neither."""
    version: int = 0
    """6 or 4 for a packet decoded as IPv6 or IPv4; 0 for anything else."""

    def layer(self, name: str) -> Layer:
        """The first layer called name; KeyError if there is none."""
        for item in self.layers:
            if item.name == name:
                return item
        raise KeyError(f"no {name} layer")

    @property
    def is_ipv6(self) -> bool:
        return self.version == 6

    @property
    def protocol(self) -> str:
        """The upper layer's name ('ICMPv6', 'ICMP', 'TCP', 'UDP', 'proto-253'), or 'other'."""
        for item in self.layers:
            if item.name in UPPER_LAYERS:
                return item.name
        return f"proto-{self.next_header}" if self.version else "other"

    @property
    def summary(self) -> str:
        """One line, from the layers: 'ICMPv6 echo-request id=7 seq=3', 'UDP 5353->5353 len=20'."""
        for item in self.layers:
            if item.name in UPPER_LAYERS:
                return f"{item.name} {item.summary}"
        if self.version == 6:
            return f"IPv6 next-header={self.next_header} len={self.layers[0].field('Payload length').text}"
        if self.version == 4:
            fragment = int(self.layers[0].field("Fragment offset").value)
            where = f", fragment at {fragment * 8}" if fragment else ""
            return f"IPv4 protocol={self.next_header} len={self.layers[0].field('Total length').text}{where}"
        return f"{len(self.packet)} byte{'s' if len(self.packet) != 1 else ''}: {self.packet[:8].hex()}"

    @property
    def names(self) -> list[str]:
        """The layer names, outermost first."""
        return [item.name for item in self.layers]


@dataclass
class _Builder:
    """Collects fields of the layer being decoded."""

    name: str
    offset: int
    fields: list[Field] = field(default_factory=list)

    def add(self, name: str, value: int | str | bytes, offset: int, length: int,
            text: str | None = None) -> None:
        self.fields.append(Field(name, value, str(value) if text is None else text, offset, length))

    def done(self, summary: str, length: int) -> Layer:
        return Layer(self.name, summary, self.offset, length, tuple(self.fields))


def protocol_name(number: int) -> str:
    """The name of an IPv6 next-header value."""
    return _PROTOCOLS.get(number, f"protocol {number}")


def dissect(packet: bytes, checksums: bool = True) -> Dissection:
    """Decode an IPv6 or IPv4 packet layer by layer; never raises on malformed input.

    checksums=False skips verifying the checksums (a summary does not need them).
    """
    problems: list[str] = []
    if version(packet) == 4 and len(packet) >= IPV4_MIN_HEADER and packet[0] & 0x0F >= 5:
        return _dissect_ipv4(packet, checksums)
    if len(packet) < IPV6_HEADER or version(packet) != 6:
        shown = version(packet) if packet else "-"
        problems.append(f"not an IP packet ({plural(len(packet), 'byte')}, version {shown})")
        return Dissection(packet, (_data_layer("Data", packet, 0, len(packet)),), tuple(problems))
    ip = _Fixed(*IPV6_FIXED.unpack_from(packet))
    layers = [_ipv6_layer(packet, ip)]
    end = min(len(packet), IPV6_HEADER + ip.plen) if ip.plen else len(packet)
    if ip.plen and IPV6_HEADER + ip.plen > len(packet):
        problems.append(f"payload length says {plural(ip.plen, 'byte')}, packet carries {len(packet) - IPV6_HEADER}")
    offset, next_header, fragmented = IPV6_HEADER, ip.nxt, False
    while next_header in _EXTENSIONS and offset < end:
        if len(layers) > MAX_EXTENSIONS:
            problems.append(f"more than {MAX_EXTENSIONS} extension headers: the rest is not decoded")
            layers.append(_data_layer("Undecoded", packet, offset, end))
            return Dissection(packet, tuple(layers), tuple(problems), next_header)
        try:
            layer, following, fragmented = _extension_layer(packet, offset, end, next_header)
        except (struct.error, IndexError) as error:
            problems.append(f"{protocol_name(next_header)} header truncated ({error})")
            layers.append(_data_layer("Undecoded", packet, offset, end))
            return Dissection(packet, tuple(layers), tuple(problems), next_header)
        layers.append(layer)
        offset += layer.length
        next_header = following
    pseudo = ip.src + ip.dst + struct.pack("!I3xB", end - offset, next_header)  # RFC 8200 8.1
    layers.extend(_upper_layers(packet, pseudo, offset, end, next_header, fragmented, problems, checksums))
    if end < len(packet):
        layers.append(_data_layer("Trailer", packet, end, len(packet)))
    return Dissection(packet, tuple(layers), tuple(problems), next_header, 6)


def _dissect_ipv4(packet: bytes, checksums: bool) -> Dissection:
    """An IPv4 packet: its header (options shown undecoded), then ICMP, TCP or UDP as for IPv6."""
    problems: list[str] = []
    first, tos, total, ident, flags_offset, ttl, protocol, checksum, src, dst = IPV4_FIXED.unpack_from(packet)
    header = min((first & 0x0F) * 4, len(packet))
    b = _Builder("IPv4", 0)
    source, destination = ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst)
    b.add("Version", 4, 0, 1)
    b.add("Header length", header, 0, 1, f"{(first & 0x0F) * 4} bytes ({first & 0x0F})")
    b.add("Type of service", tos, 1, 1, f"0x{tos:02x} (DSCP {tos >> 2}, ECN {tos & 3})")
    b.add("Total length", total, 2, 2)
    b.add("Identification", ident, 4, 2, f"0x{ident:04x}")
    names = [name for bit, name in ((0x4000, "DF"), (0x2000, "MF")) if flags_offset & bit]
    b.add("Flags", flags_offset >> 13, 6, 1, f"0x{flags_offset >> 13:x} [{','.join(names)}]")
    fragment = flags_offset & 0x1FFF
    b.add("Fragment offset", fragment, 6, 2, f"{fragment} ({fragment * 8} bytes)")
    b.add("TTL", ttl, 8, 1)
    b.add("Protocol", protocol, 9, 1, f"{protocol} ({_PROTOCOLS4.get(protocol, 'protocol ' + str(protocol))})")
    right = ipv4_checksum(packet[:header]) == 0
    b.add("Header checksum", checksum, 10, 2, f"0x{checksum:04x}" + ("" if right or not checksums else " (wrong)"))
    b.add("Source", source.compressed, 12, 4)
    b.add("Destination", destination.compressed, 16, 4)
    if header > IPV4_MIN_HEADER:
        options = packet[IPV4_MIN_HEADER:header]
        b.add("Options", options, IPV4_MIN_HEADER, len(options), _short_hex(options))
    if (first & 0x0F) * 4 > len(packet):
        problems.append(f"header length says {(first & 0x0F) * 4} bytes, packet carries {len(packet)}")
    if checksums and not right:
        problems.append("IPv4 header checksum is wrong")
    layers = [b.done(f"{source} -> {destination}, TTL {ttl}", header)]
    end = min(len(packet), total) if total >= header else len(packet)
    if total > len(packet):
        problems.append(f"total length says {total} bytes, packet carries {len(packet)}")
    elif total < header:
        problems.append(f"total length {total} is shorter than the header ({header} bytes)")
    # ICMP's checksum covers its message only; TCP's and UDP's a pseudo-header too (RFC 793, 768).
    pseudo = b"" if protocol == 1 else src + dst + struct.pack("!xBH", protocol, end - header)
    fragmented = fragment > 0 or bool(flags_offset & 0x2000)
    if protocol == 17 and end - header >= 8 and packet[header + 6:header + 8] == b"\0\0":
        checksums = False  # a UDP checksum of zero over IPv4 means none was computed (RFC 768)
    layers.extend(_upper_layers(packet, pseudo, header, end, protocol, fragmented, problems, checksums, version=4))
    if end < len(packet):
        layers.append(_data_layer("Trailer", packet, end, len(packet)))
    return Dissection(packet, tuple(layers), tuple(problems), protocol, 4)


def _ipv6_layer(packet: bytes, ip: _Fixed) -> Layer:
    b = _Builder("IPv6", 0)
    traffic_class = (ip.v_fc_flow >> 20) & 0xFF
    flow = ip.v_fc_flow & 0xFFFFF
    src, dst = ipaddress.IPv6Address(ip.src), ipaddress.IPv6Address(ip.dst)
    b.add("Version", ip.v_fc_flow >> 28, 0, 1)
    b.add("Traffic class", traffic_class, 0, 2,
          f"0x{traffic_class:02x} (DSCP {traffic_class >> 2}, ECN {traffic_class & 3})")
    b.add("Flow label", flow, 1, 3, f"0x{flow:05x}")
    b.add("Payload length", ip.plen, 4, 2)
    b.add("Next header", ip.nxt, 6, 1, f"{ip.nxt} ({protocol_name(ip.nxt)})")
    b.add("Hop limit", ip.hlim, 7, 1)
    b.add("Source", src.compressed, 8, 16)
    b.add("Destination", dst.compressed, 24, 16)
    return b.done(f"{src.compressed} -> {dst.compressed}, hop limit {ip.hlim}", IPV6_HEADER)


def _extension_layer(packet: bytes, offset: int, end: int, kind: int) -> tuple[Layer, int, bool]:
    """Decode the extension header at offset; return it, the next header and whether it fragments.

    Read in place with struct (RFC 8200 4): no copy of the rest of the packet, so a chain of headers
    costs time linear in its length.
    """
    following, size_field = packet[offset], packet[offset + 1]
    if kind == 44:
        length = 8
    elif kind == 51:
        length = (size_field + 2) * 4  # AH counts 4-byte units, minus 2 (RFC 4302)
    else:
        length = (size_field + 1) * 8
    if offset + length > end:
        raise IndexError(f"needs {length} bytes at {offset}, the packet ends at {end}")
    b = _Builder(protocol_name(kind), offset)
    b.add("Next header", following, offset, 1, f"{following} ({protocol_name(following)})")
    fragmented = False
    if kind == 44:
        offset_and_flags, ident = struct.unpack_from("!HI", packet, offset + 2)
        frag_off, more = offset_and_flags >> 3, offset_and_flags & 1
        b.add("Reserved", size_field, offset + 1, 1)
        b.add("Fragment offset", frag_off, offset + 2, 2, f"{frag_off} ({frag_off * 8} bytes)")
        b.add("More fragments", more, offset + 3, 1, "yes" if more else "no")
        b.add("Identification", ident, offset + 4, 4, f"0x{ident:08x}")
        fragmented = frag_off > 0 or bool(more)
        summary = f"offset {frag_off * 8}, {'more follow' if more else 'last'}, id 0x{ident:08x}"
    else:
        b.add("Header length", size_field, offset + 1, 1, f"{size_field} ({length} bytes)")
        if kind == 43:
            routing_type, segments_left = packet[offset + 2], packet[offset + 3]
            data = packet[offset + 4:offset + length]
            b.add("Routing type", routing_type, offset + 2, 1)
            b.add("Segments left", segments_left, offset + 3, 1)
            b.add("Data", data, offset + 4, length - 4, _short_hex(data))
            summary = f"type {routing_type}, {segments_left} segments left"
        elif kind == 51:
            spi, seq = struct.unpack_from("!II", packet, offset + 4)
            b.add("SPI", spi, offset + 4, 4, f"0x{spi:08x}")
            b.add("Sequence", seq, offset + 8, 4)
            summary = f"SPI 0x{spi:08x}"
        else:
            options = _options(b, packet, offset + 2, offset + length)
            summary = ", ".join(options) or "no options"
    return b.done(summary, length), following, fragmented


def _options(b: _Builder, packet: bytes, start: int, end: int) -> list[str]:
    """Hop-by-hop and destination options in TLV form (RFC 8200 4.2)."""
    names = {0: "Pad1", 1: "PadN", 5: "Router Alert", 194: "Jumbo Payload"}
    found, at = [], start
    while at < end:
        kind = packet[at]
        if kind == 0:
            b.add("Option Pad1", 0, at, 1, "Pad1")
            at += 1
            continue
        size = packet[at + 1] if at + 1 < end else 0
        name = names.get(kind, f"type {kind}")
        data = packet[at + 2:at + 2 + size]
        b.add(f"Option {name}", data, at, 2 + size, f"{name}, {size} bytes {_short_hex(data)}".rstrip())
        if kind not in (0, 1):
            found.append(name)
        at += 2 + size
    return found


def _upper_layers(packet: bytes, pseudo: bytes, offset: int, end: int, kind: int,
                  fragmented: bool, problems: list[str], checksums: bool, version: int = 6) -> list[Layer]:
    """ICMPv6 (or IPv4's ICMP), TCP or UDP from offset to end; pseudo: the pseudo-header its checksum covers."""
    if (kind == 59 and version == 6) or offset >= end:
        return []
    if fragmented:
        return [_data_layer("Fragment data", packet, offset, end)]
    decoders = {58: _icmp6_layer, 6: _tcp_layer, 17: _udp_layer} if version == 6 else \
        {1: _icmp4_layer, 6: _tcp_layer, 17: _udp_layer}
    names = _PROTOCOLS if version == 6 else _PROTOCOLS4
    name = names.get(kind, f"protocol {kind}")
    decoder = decoders.get(kind)
    if decoder is None:
        return [_data_layer(name if kind in names else "Data", packet, offset, end)]
    try:
        layers = decoder(packet, offset, end)
    except (dpkt.UnpackError, struct.error, IndexError) as error:
        problems.append(f"{name} header truncated ({error})")
        return [_data_layer("Undecoded", packet, offset, end)]
    if checksums and not _checksum_ok(pseudo, packet[offset:end]):
        problems.append(f"{name} checksum is wrong")
    return layers


def _checksum_field(b: _Builder, packet: bytes, at: int) -> None:
    value = int.from_bytes(packet[at:at + 2], "big")
    b.add("Checksum", value, at, 2, f"0x{value:04x}")


def _icmp6_layer(packet: bytes, offset: int, end: int) -> list[Layer]:
    # Read in place: dpkt would parse an error message's invoking packet as IPv6 again.
    if end - offset < 4:
        raise IndexError(f"ICMPv6 needs 4 bytes, {end - offset} left")
    kind, code = packet[offset], packet[offset + 1]
    b = _Builder("ICMPv6", offset)
    name = _ICMP6_TYPES.get(kind, f"type {kind}")
    b.add("Type", kind, offset, 1, f"{kind} ({name})")
    b.add("Code", code, offset + 1, 1)
    _checksum_field(b, packet, offset + 2)
    summary, header = name, 4
    if kind in (128, 129):
        ident, seq = struct.unpack_from("!HH", packet, offset + 4)
        b.add("Identifier", ident, offset + 4, 2)
        b.add("Sequence", seq, offset + 6, 2)
        summary, header = f"{name} id={ident} seq={seq}", 8
    elif kind == 2:
        (mtu,) = struct.unpack_from("!I", packet, offset + 4)
        b.add("MTU", mtu, offset + 4, 4)
        summary, header = f"{name} mtu={mtu}", 8
    elif kind in (135, 136) and end - offset >= 24:
        target = ipaddress.IPv6Address(packet[offset + 8:offset + 24]).compressed
        b.add("Flags", packet[offset + 4], offset + 4, 4, f"0x{packet[offset + 4]:02x}")
        b.add("Target", target, offset + 8, 16)
        summary, header = f"{name} target={target}", 24
    elif end - offset >= 8:
        rest = packet[offset + 4:offset + 8]
        b.add("Rest of header", rest, offset + 4, 4, rest.hex())
        header = 8
    if code and kind not in (128, 129):
        summary += f" code={code}"
    layers = [b.done(summary, min(header, end - offset))]
    if offset + header < end:
        label = "Invoking packet" if kind in (1, 2, 3, 4) else "Data"
        layers.append(_data_layer(label, packet, offset + header, end))
    return layers


def _icmp4_layer(packet: bytes, offset: int, end: int) -> list[Layer]:
    """IPv4's ICMP (RFC 792): echo's id and seq, fragmentation-needed's MTU (RFC 1191), else the rest as bytes."""
    if end - offset < 8:
        raise IndexError(f"ICMP needs 8 bytes, {end - offset} left")
    kind, code = packet[offset], packet[offset + 1]
    b = _Builder("ICMP", offset)
    name = _ICMP4_TYPES.get(kind, f"type {kind}")
    b.add("Type", kind, offset, 1, f"{kind} ({name})")
    b.add("Code", code, offset + 1, 1)
    _checksum_field(b, packet, offset + 2)
    summary = name
    if kind in (0, 8, 13, 14):
        ident, seq = struct.unpack_from("!HH", packet, offset + 4)
        b.add("Identifier", ident, offset + 4, 2)
        b.add("Sequence", seq, offset + 6, 2)
        summary = f"{name} id={ident} seq={seq}"
    elif kind == 3 and code == 4:
        (mtu,) = struct.unpack_from("!H", packet, offset + 6)
        b.add("Unused", packet[offset + 4:offset + 6], offset + 4, 2, packet[offset + 4:offset + 6].hex())
        b.add("Next-hop MTU", mtu, offset + 6, 2)
        summary = f"{name} mtu={mtu}"
    else:
        rest = packet[offset + 4:offset + 8]
        b.add("Rest of header", rest, offset + 4, 4, rest.hex())
    if code and not (kind == 3 and code == 4):
        summary += f" code={code}"
    layers = [b.done(summary, 8)]
    if offset + 8 < end:
        label = "Invoking packet" if kind in (3, 4, 5, 11, 12) else "Data"
        layers.append(_data_layer(label, packet, offset + 8, end))
    return layers


def _tcp_layer(packet: bytes, offset: int, end: int) -> list[Layer]:
    tcp = dpkt.tcp.TCP(packet[offset:end])
    header = tcp.off * 4
    b = _Builder("TCP", offset)
    b.add("Source port", tcp.sport, offset, 2)
    b.add("Destination port", tcp.dport, offset + 2, 2)
    b.add("Sequence number", tcp.seq, offset + 4, 4)
    b.add("Acknowledgment number", tcp.ack, offset + 8, 4)
    b.add("Header length", header, offset + 12, 1, f"{header} bytes ({tcp.off})")
    flags = tcp.flags & 0x1FF
    names = [n for bit, n in enumerate(_TCP_FLAGS) if flags & (1 << bit)]
    b.add("Flags", flags, offset + 12, 2, f"0x{flags:03x} [{','.join(names)}]")
    b.add("Window", tcp.win, offset + 14, 2)
    _checksum_field(b, packet, offset + 16)
    b.add("Urgent pointer", tcp.urp, offset + 18, 2)
    at = offset + 20
    for kind, data in dpkt.tcp.parse_opts(tcp.opts):
        size = 1 if kind in (0, 1) else 2 + len(data)
        name = _TCP_OPTIONS.get(kind, f"option {kind}")
        text = name
        if kind == 2 and len(data) == 2:
            text = f"MSS {int.from_bytes(data, 'big')}"
        elif kind == 3 and len(data) == 1:
            text = f"Window scale {data[0]} (x{1 << data[0]})"
        elif kind == 8 and len(data) == 8:
            text = "Timestamps val={} ecr={}".format(*struct.unpack("!II", data))
        b.add(f"Option {name}", data, at, size, text)
        at += size
    # A header length past the packet's end is what the bytes say, not what they hold: the layer ends there.
    header = min(header, end - offset)
    summary = (f"{tcp.sport}->{tcp.dport} [{','.join(names)}] seq={tcp.seq} ack={tcp.ack} "
               f"win={tcp.win} len={end - offset - header}")
    layers = [b.done(summary, header)]
    if offset + header < end:
        layers.append(_data_layer("Payload", packet, offset + header, end))
    return layers


def _udp_layer(packet: bytes, offset: int, end: int) -> list[Layer]:
    udp = dpkt.udp.UDP(packet[offset:end])
    b = _Builder("UDP", offset)
    b.add("Source port", udp.sport, offset, 2)
    b.add("Destination port", udp.dport, offset + 2, 2)
    b.add("Length", udp.ulen, offset + 4, 2)
    _checksum_field(b, packet, offset + 6)
    layers = [b.done(f"{udp.sport}->{udp.dport} len={udp.ulen - 8}", 8)]
    if offset + 8 < end:
        layers.append(_data_layer("Payload", packet, offset + 8, end))
    return layers


def _data_layer(name: str, packet: bytes, start: int, end: int) -> Layer:
    data = packet[start:end]
    b = _Builder(name, start)
    b.add("Data", data, start, len(data), _short_hex(data))
    return b.done(plural(len(data), "byte"), len(data))


def _short_hex(data: bytes, limit: int = 16) -> str:
    return data[:limit].hex(" ") + (" ..." if len(data) > limit else "")


def _checksum_ok(pseudo: bytes, body: bytes) -> bool:
    """Verify an upper-layer checksum over its pseudo-header (IPv6's, RFC 8200 8.1; IPv4's; none for ICMP).

    The ones' complement sum of 16-bit words is the bytes read as one big number modulo 0xFFFF
    (2**16 is 1 modulo 0xFFFF), so one C-speed modulo does the whole sum; it comes out as 0xFFFF,
    that is 0 here, exactly when the checksum holds (a pseudo-header is never all zeros; an ICMP
    message, which has none, of zeros only, its checksum field included, would pass: none is sent).
    """
    data = pseudo + body
    if len(data) % 2:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF == 0
