"""Object keys and object bodies: how packets are laid out in the bucket (docs/wire-format.md).

Every body format is in one registry and every reader (the ingress loop, the inspector, the pcap
export) decodes through decode(): a sealed body is opened, then decoded as the format it wraps.
"""

from __future__ import annotations

import ipaddress
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import ulid

from agent import ip

# A bundle starts with this magic: 'H' (0x48) is never the first byte of an IPv6 packet, so a reader
# tells the formats apart from the first bytes. It could begin an IPv4 packet (version 4, IHL 8):
# so an IPv4 packet always travels in a bundle, even alone, and never raw.
BUNDLE_MAGIC = b"HSB1"
PACED_BUNDLE_MAGIC = b"HSB2"
SEALED_MAGIC = b"HSS1"
_LENGTH = struct.Struct("!I")
_PACED_ENTRY = struct.Struct("!II")
"""A paced bundle's entry header: the packet's length, and its offset from the first, in microseconds."""
MAX_OBJECT_BYTES = 16 << 20
"""Objects larger than this are refused unread, and no GET reads more: no sender writes one."""
MAX_BUNDLE_PACKETS = 4096
"""A bundle holds at most this many packets, so delivering one object takes a bounded time."""


class WireError(ValueError):
    """An object key or body that does not follow the wire format; reason is the drop label."""

    def __init__(self, message: str, reason: str = "bad_object") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A parsed object key: {prefix}{destination}/{ULID}."""

    destination: ipaddress.IPv6Address
    ulid: ulid.ULID

    @property
    def sent_at(self) -> datetime:
        """When the sender made the key (the ULID's timestamp)."""
        return self.ulid.datetime

    @property
    def timestamp(self) -> float:
        """The ULID's time in seconds since the epoch."""
        return float(self.ulid.timestamp)


class KeyMaker:
    """Makes object keys whose ULIDs are strictly monotonic within this process.

    clock: the time a ULID is stamped with (a node's estimate of the bucket's clock, agent.clock); a
    clock that steps back never makes a ULID smaller than the last.
    """

    def __init__(self, prefix: str = "", clock: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self._clock = clock
        self._last = 0
        self._generator = ulid.ULIDGenerator(clock=self._milliseconds, policy=ulid.StrictMonotonicPolicy())
        self._lock = threading.Lock()

    def _milliseconds(self) -> int:
        self._last = max(self._last, int(self._clock() * 1000))
        return self._last

    def make(self, destination: ipaddress.IPv6Address) -> str:
        """A fresh key for an object sent to destination."""
        with self._lock:
            stamp = self._generator.generate()
        return f"{inbox(self.prefix, destination)}{stamp}"


def inbox(prefix: str, address: ipaddress.IPv6Address) -> str:
    """The key prefix a node lists: {prefix}{address}/ (the slash keeps ::a apart from ::a1)."""
    return f"{prefix}{address.compressed}/"


def parse_key(key: str, prefix: str = "") -> ObjectKey:
    """Parse a key made by KeyMaker; raise WireError('bad_key') if it is not one, in KeyMaker's spelling
    exactly: the address in RFC 5952 text, the ULID in 26 upper-case Crockford characters."""
    if not key.startswith(prefix):
        raise WireError(f"key {key!r} lacks prefix {prefix!r}", "bad_key")
    destination, slash, stamp = key[len(prefix):].rpartition("/")
    if not slash:
        raise WireError(f"key {key!r} has no '/'", "bad_key")
    try:
        parsed = ObjectKey(ipaddress.IPv6Address(destination), ulid.ULID.from_str(stamp))
    except ValueError as error:
        raise WireError(f"key {key!r}: {error}", "bad_key") from None
    # One object, one key: a key in another spelling (lower case, a long address) would pass the exact-key
    # checks as a new object while naming the same one.
    if str(parsed.ulid) != stamp or parsed.destination.compressed != destination:
        raise WireError(f"key {key!r} is not in canonical form: {inbox(prefix, parsed.destination)}{parsed.ulid}",
                        "bad_key")
    return parsed


def ulid_floor(seconds: float) -> str:
    """The smallest ULID of that moment: keys that sort after {inbox}{this} were made at or after it."""
    milliseconds = max(0, int(seconds * 1000))
    return str(ulid.ULID.from_bytes(milliseconds.to_bytes(6, "big") + bytes(10)))


def encode(packets: list[bytes], offsets: list[float] | None = None) -> bytes:
    """One IPv6 packet is stored raw; several packets, or any IPv4 packet, become a bundle, a paced one
    (bundle-v2) when each packet's offset in seconds from the first is given, so the receiver can deliver
    them at the pace they came."""
    if not packets:
        raise WireError("nothing to encode")
    if len(packets) > MAX_BUNDLE_PACKETS:
        raise WireError(f"{len(packets)} packets: a bundle holds at most {MAX_BUNDLE_PACKETS}")
    if len(packets) == 1 and ip.version(packets[0]) == 6:
        return packets[0]
    if offsets is not None:
        parts = [PACED_BUNDLE_MAGIC]
        for packet, offset in zip(packets, offsets, strict=True):
            micros = min(max(0, round(offset * 1_000_000)), 0xFFFFFFFF)
            parts.append(_PACED_ENTRY.pack(len(packet), micros))
            parts.append(packet)
        return b"".join(parts)
    parts = [BUNDLE_MAGIC]
    for packet in packets:
        parts.append(_LENGTH.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


def _raw(body: bytes) -> list[bytes]:
    return [body]


def _bundle(body: bytes) -> list[bytes]:
    return _entries(body, _LENGTH)[0]


def _paced_bundle(body: bytes) -> list[bytes]:
    return _entries(body, _PACED_ENTRY)[0]


def _entries(body: bytes, entry: struct.Struct) -> tuple[list[bytes], list[float]]:
    """Split a bundle into its packets and their offsets in seconds (all 0 in bundle-v1): linear in
    its size, at most MAX_BUNDLE_PACKETS packets. Offsets are as the sender wrote them: whoever
    paces by them bounds them."""
    packets: list[bytes] = []
    offsets: list[float] = []
    position = len(BUNDLE_MAGIC)  # either magic: both are 4 bytes
    while position < len(body):
        if len(packets) == MAX_BUNDLE_PACKETS:
            raise WireError(f"bundle holds more than {MAX_BUNDLE_PACKETS} packets", "too_many_packets")
        if position + entry.size > len(body):
            raise WireError(f"bundle truncated at byte {position}")
        length, *micros = entry.unpack_from(body, position)
        position += entry.size
        if length == 0 or position + length > len(body):
            raise WireError(f"bundle entry of {length} bytes overruns the object at byte {position}")
        packets.append(body[position:position + length])
        offsets.append(micros[0] / 1_000_000 if micros else 0.0)
        position += length
    if not packets:
        raise WireError("empty bundle")
    return packets, offsets


@dataclass(frozen=True, slots=True)
class Format:
    """One body format: its name, how to recognise it from the first bytes, how to split it."""

    name: str
    recognise: Callable[[bytes], bool]
    split: Callable[[bytes], list[bytes]] | None
    """None for a wrapping format (sealed), which is opened instead of split."""


FORMATS = (
    Format("raw-ipv6", lambda body: ip.version(body) == 6, _raw),
    Format("bundle-v1", lambda body: body.startswith(BUNDLE_MAGIC), _bundle),
    Format("bundle-v2", lambda body: body.startswith(PACED_BUNDLE_MAGIC), _paced_bundle),
    Format("sealed-v1", lambda body: body.startswith(SEALED_MAGIC), None),
)


def body_format(body: bytes) -> str:
    """Name the format of an object body: 'raw-ipv6', 'bundle-v1', 'bundle-v2', 'sealed-v1' or 'unknown'."""
    for candidate in FORMATS:
        if candidate.recognise(body):
            return candidate.name
    return "unknown"


Opener = Callable[[str, bytes], tuple[ipaddress.IPv6Address, bytes]]
"""Opens a sealed body found under an object key: (key, body) -> (authenticated sender, inner body);
raises WireError whose reason names the failure."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """The packets of an object body, the format they came in, and who sealed them (if sealed)."""

    format: str
    packets: list[bytes]
    sender: ipaddress.IPv6Address | None = None
    offsets: list[float] | None = None
    """Each packet's offset in seconds from the first, as its sender saw them (a paced bundle only)."""

    @property
    def sealed(self) -> bool:
        return self.sender is not None


def decode(body: bytes, key: str = "", opener: Opener | None = None) -> Decoded:
    """The packets in an object body; raise WireError on a body of no known format.

    A sealed body is opened with opener (its key binds it to where it was found) and the body it
    wraps decoded in turn; without an opener it is refused as 'sealed_no_key'.
    """
    kind = body_format(body)
    if kind == "sealed-v1":
        if opener is None:
            raise WireError("sealed, no key to open it", "sealed_no_key")
        sender, inner = opener(key, body)
        plain = _split(inner)
        if plain.format == "sealed-v1":
            raise WireError("a sealed body inside a sealed body")
        return Decoded(f"sealed-v1/{plain.format}", plain.packets, sender, plain.offsets)
    return _split(body)


def _split(body: bytes) -> Decoded:
    if body.startswith(PACED_BUNDLE_MAGIC):
        packets, offsets = _entries(body, _PACED_ENTRY)
        return Decoded("bundle-v2", packets, offsets=offsets)
    for candidate in FORMATS:
        if candidate.recognise(body):
            if candidate.split is None:
                return Decoded(candidate.name, [])
            return Decoded(candidate.name, candidate.split(body))
    raise WireError(f"unknown object format (first bytes {body[:4].hex() or 'none'})")
