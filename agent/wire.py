"""Object keys and object bodies: how packets are laid out in the bucket (docs/wire-format.md)."""

from __future__ import annotations

import ipaddress
import struct
import threading
from dataclasses import dataclass
from datetime import datetime

import ulid

# A bundle starts with this magic: 'H' (0x48) is never the first byte of an IPv6 packet
# (version nibble 4), so a reader tells the two formats apart from the first byte.
BUNDLE_MAGIC = b"HSB1"
_LENGTH = struct.Struct("!I")
MAX_OBJECT_BYTES = 16 << 20
"""Objects larger than this are refused unread: no format the agent writes comes near it."""


class WireError(ValueError):
    """An object key or body that does not follow the wire format."""


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A parsed object key: {prefix}{destination}/{ULID}."""

    destination: ipaddress.IPv6Address
    ulid: ulid.ULID

    @property
    def sent_at(self) -> datetime:
        """When the sender made the key (the ULID's timestamp)."""
        return self.ulid.datetime


class KeyMaker:
    """Makes object keys whose ULIDs are strictly monotonic within this process."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._generator = ulid.ULIDGenerator(policy=ulid.StrictMonotonicPolicy())
        self._lock = threading.Lock()

    def make(self, destination: ipaddress.IPv6Address) -> str:
        """A fresh key for an object sent to destination."""
        with self._lock:
            stamp = self._generator.generate()
        return f"{inbox(self.prefix, destination)}{stamp}"


def inbox(prefix: str, address: ipaddress.IPv6Address) -> str:
    """The key prefix a node lists: {prefix}{address}/ (the slash keeps ::a apart from ::a1)."""
    return f"{prefix}{address.compressed}/"


def parse_key(key: str, prefix: str = "") -> ObjectKey:
    """Parse a key made by KeyMaker; raise WireError if it is not one."""
    if not key.startswith(prefix):
        raise WireError(f"key {key!r} lacks prefix {prefix!r}")
    destination, slash, stamp = key[len(prefix):].rpartition("/")
    if not slash:
        raise WireError(f"key {key!r} has no '/'")
    try:
        return ObjectKey(ipaddress.IPv6Address(destination), ulid.ULID.from_str(stamp))
    except ValueError as error:
        raise WireError(f"key {key!r}: {error}") from None


def encode(packets: list[bytes]) -> bytes:
    """One packet is stored raw; several become a bundle."""
    if not packets:
        raise WireError("nothing to encode")
    if len(packets) == 1:
        return packets[0]
    parts = [BUNDLE_MAGIC]
    for packet in packets:
        parts.append(_LENGTH.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


def body_format(body: bytes) -> str:
    """Name the format of an object body: 'raw-ipv6', 'bundle-v1' or 'unknown'."""
    if body.startswith(BUNDLE_MAGIC):
        return "bundle-v1"
    if body and body[0] >> 4 == 6:
        return "raw-ipv6"
    return "unknown"


def decode(body: bytes) -> list[bytes]:
    """The packets in an object body; raise WireError on a body of no known format."""
    kind = body_format(body)
    if kind == "raw-ipv6":
        return [body]
    if kind != "bundle-v1":
        raise WireError(f"unknown object format (first bytes {body[:4].hex() or 'none'})")
    packets = []
    offset = len(BUNDLE_MAGIC)
    while offset < len(body):
        if offset + _LENGTH.size > len(body):
            raise WireError(f"bundle truncated at byte {offset}")
        (length,) = _LENGTH.unpack_from(body, offset)
        offset += _LENGTH.size
        if length == 0 or offset + length > len(body):
            raise WireError(f"bundle entry of {length} bytes overruns the object at byte {offset}")
        packets.append(body[offset:offset + length])
        offset += length
    if not packets:
        raise WireError("empty bundle")
    return packets
