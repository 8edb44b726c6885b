"""The clear header of a sealed object body (HSS1): its layout, and the reasons an object is refused."""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

import ulid

# 'H' (0x48) never starts an IPv6 packet and the third byte tells it from a bundle's HSB1.
SEALED_MAGIC = b"HSS1"
VERSION = 2
"""2: a key per direction (1 shared one key between both directions of a pair)."""
NONCE_BYTES = 12
TAG_BYTES = 16
PREFIX_ID_BYTES = 8
# magic, version, sender, sender key id, destination, recipient key id, key prefix id, ULID, nonce
_LAYOUT = struct.Struct("!4sB16s8s16s8s8s16s12s")
HEADER_BYTES = _LAYOUT.size
OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES
"""What sealing adds to a body: the clear header and the AEAD tag."""

Reason = Literal["unsealed", "bad_seal", "relocated", "unknown_sender", "wrong_key", "forged", "unknown_peer"]
OPEN_REASONS: tuple[Reason, ...] = ("unsealed", "bad_seal", "relocated", "unknown_sender", "wrong_key", "forged")
"""Why a receiver refuses a sealed object, in the order they are checked (docs/wire-format.md)."""


class SealError(ValueError):
    """An object that cannot be sealed or opened; reason is a short label for counters."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason
        self.detail = detail


def prefix_id(prefix: str) -> bytes:
    """The 8 bytes that name a key prefix in a header: SHA-256 of its UTF-8, truncated."""
    return hashlib.sha256(prefix.encode("utf-8")).digest()[:PREFIX_ID_BYTES]


@dataclass(frozen=True, slots=True)
class Header:
    """What a receiver reads before decrypting: who sealed it, with which keys, for which object key."""

    sender: ipaddress.IPv6Address
    sender_key: bytes
    destination: ipaddress.IPv6Address
    recipient_key: bytes
    prefix_id: bytes
    ulid: ulid.ULID
    nonce: bytes

    def pack(self) -> bytes:
        return _LAYOUT.pack(SEALED_MAGIC, VERSION, self.sender.packed, self.sender_key, self.destination.packed,
                            self.recipient_key, self.prefix_id, self.ulid.bytes, self.nonce)


def is_sealed(body: bytes) -> bool:
    """Whether a body claims to be sealed (it may still be malformed)."""
    return body[:len(SEALED_MAGIC)] == SEALED_MAGIC


def parse_header(body: bytes) -> Header:
    """The clear header of a sealed body; SealError 'unsealed' or 'bad_seal' when there is none."""
    if not is_sealed(body):
        raise SealError("unsealed", f"first bytes {bytes(body[:4]).hex() or 'none'}, not {SEALED_MAGIC.decode()}")
    if len(body) < OVERHEAD_BYTES:
        raise SealError("bad_seal", f"{len(body)} bytes, shorter than header and tag ({OVERHEAD_BYTES})")
    _magic, version, sender, sender_key, destination, recipient_key, prefix, stamp, nonce = _LAYOUT.unpack_from(body)
    if version != VERSION:
        raise SealError("bad_seal", f"version {version}, this node reads version {VERSION}")
    return Header(ipaddress.IPv6Address(sender), sender_key, ipaddress.IPv6Address(destination), recipient_key,
                  prefix, ulid.ULID.from_bytes(stamp), nonce)
