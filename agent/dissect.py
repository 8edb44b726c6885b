"""The one packet decoder: an IPv6 packet layer by layer, each field located by byte offset.

The inspector's tree and hex view, the packet table's one-line summaries and the agent's packet
events all come from here. Its cost is linear in the packet's size, whatever the bytes say.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import dpkt

from agent.ip import IPV6_FIXED, IPV6_HEADER, version

_PROTOCOLS = {
    0: "Hop-by-Hop Options", 6: "TCP", 17: "UDP", 43: "Routing", 44: "Fragment", 50: "ESP", 51: "AH",
    58: "ICMPv6", 59: "No Next Header", 60: "Destination Options",
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
UPPER_LAYERS = ("ICMPv6", "TCP", "UDP")


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
    """The protocol number after the last extension header; -1 when the packet is not IPv6."""

    def layer(self, name: str) -> Layer:
        """The first layer called name; KeyError if there is none."""
        for item in self.layers:
            if item.name == name:
                return item
        raise KeyError(f"no {name} layer")

    @property
    def is_ipv6(self) -> bool:
        return self.next_header >= 0

    @property
    def protocol(self) -> str:
        """The upper layer's name ('ICMPv6', 'TCP', 'UDP', 'proto-253'), 'IPv4' or 'other'."""
        for item in self.layers:
            if item.name in UPPER_LAYERS:
                return item.name
        if self.is_ipv6:
            return f"proto-{self.next_header}"
        return "IPv4" if version(self.packet) == 4 else "other"

    @property
    def summary(self) -> str:
        """One line, from the layers: 'ICMPv6 echo-request id=7 seq=3', 'UDP 5353->5353 len=20'."""
        for item in self.layers:
            if item.name in UPPER_LAYERS:
                return f"{item.name} {item.summary}"
        if self.is_ipv6:
            return f"IPv6 next-header={self.next_header} len={self.layers[0].field('Payload length').text}"
        if self.protocol == "IPv4":
            return f"IPv4 packet, {len(self.packet)} bytes"
        return f"{len(self.packet)} bytes: {self.packet[:8].hex()}"

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
    """Decode an IPv6 packet layer by layer; never raises on malformed input.

    checksums=False skips verifying the upper layer's checksum (a summary does not need it).
    """
    problems: list[str] = []
    if len(packet) < IPV6_HEADER or version(packet) != 6:
        problems.append(f"not an IPv6 packet ({len(packet)} bytes, version {version(packet) if packet else '-'})")
        return Dissection(packet, (_data_layer("Data", packet, 0, len(packet)),), tuple(problems))
    ip = _Fixed(*IPV6_FIXED.unpack_from(packet))
    layers = [_ipv6_layer(packet, ip)]
    end = min(len(packet), IPV6_HEADER + ip.plen) if ip.plen else len(packet)
    if ip.plen and IPV6_HEADER + ip.plen > len(packet):
        problems.append(f"payload length says {ip.plen} bytes, packet carries {len(packet) - IPV6_HEADER}")
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
    upper = _upper_layers(packet, ip, offset, end, next_header, fragmented, problems, checksums)
    layers.extend(upper)
    if end < len(packet):
        layers.append(_data_layer("Trailer", packet, end, len(packet)))
    return Dissection(packet, tuple(layers), tuple(problems), next_header)


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


def _upper_layers(packet: bytes, ip: _Fixed, offset: int, end: int, kind: int,
                  fragmented: bool, problems: list[str], checksums: bool) -> list[Layer]:
    body = packet[offset:end]
    if kind == 59 or offset >= end:
        return []
    if fragmented:
        return [_data_layer("Fragment data", packet, offset, end)]
    decoders = {58: _icmp6_layer, 6: _tcp_layer, 17: _udp_layer}
    decoder = decoders.get(kind)
    if decoder is None:
        return [_data_layer(protocol_name(kind) if kind in _PROTOCOLS else "Data", packet, offset, end)]
    try:
        layers = decoder(packet, offset, end)
    except (dpkt.UnpackError, struct.error, IndexError) as error:
        problems.append(f"{protocol_name(kind)} header truncated ({error})")
        return [_data_layer("Undecoded", packet, offset, end)]
    if checksums and not _checksum_ok(ip.src, ip.dst, kind, body):
        problems.append(f"{protocol_name(kind)} checksum is wrong")
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
    return b.done(f"{len(data)} bytes", len(data))


def _short_hex(data: bytes, limit: int = 16) -> str:
    return data[:limit].hex(" ") + (" ..." if len(data) > limit else "")


def _checksum_ok(src: bytes, dst: bytes, kind: int, body: bytes) -> bool:
    """Verify an upper-layer checksum over the IPv6 pseudo-header (RFC 8200 8.1).

    The ones' complement sum of 16-bit words is the bytes read as one big number modulo 0xFFFF
    (2**16 is 1 modulo 0xFFFF), so one C-speed modulo does the whole sum; it comes out as 0xFFFF,
    that is 0 here, exactly when the checksum holds (the pseudo-header is never all zeros).
    """
    data = src + dst + struct.pack("!I3xB", len(body), kind) + body
    if len(data) % 2:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF == 0
