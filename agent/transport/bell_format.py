"""The doorbell's message: the keys a sender put, and (revision 2) who says so and its MAC (docs/wire-format.md).

Revision 2 adds `from` and `mac` to revision 1's message and keeps `"v": 1`, so a receiver of
revision 1 still reads its bells (it ignores fields it does not know): a network upgrades node by node.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.transport.base import Bell

FORMAT = 1
"""The `v` of every bell message, revision 1 and 2 alike."""
MAC_BYTES = 16
MAX_MESSAGE = 64 << 10
"""A bell message longer than this is not one of ours (a sender rings a few keys at a time)."""
MAC_LABEL = b"hoshino bells v2"


@dataclass(frozen=True, slots=True)
class BellMessage:
    """One doorbell message as received: its bells, the sender it names (revision 2) and its MAC."""

    bells: tuple[Bell, ...]
    sender: ipaddress.IPv6Address | None = None
    mac: bytes = b""


class BellProver(Protocol):
    """Proves who rang: a sealed node's MAC under the pair key it shares with the queue's owner."""

    def sign(self, owner: ipaddress.IPv6Address, bells: Sequence[Bell]) -> bytes:
        """The MAC of bells rung into owner's queue; b'' when there is no key for owner."""
        ...

    def verify(self, message: BellMessage, owner: ipaddress.IPv6Address) -> bool:
        """True when message's MAC proves its sender rang owner's queue with exactly these bells."""
        ...


def encode_bells(bells: Sequence[Bell], sender: ipaddress.IPv6Address | None = None, mac: bytes = b"") -> str:
    """A bell message: revision 1 without a sender, revision 2 with one (and its MAC when it seals)."""
    message: dict[str, object] = {"v": FORMAT, "bells": [[bell.key, bell.size] for bell in bells]}
    if sender is not None:
        message["from"] = sender.compressed
    if mac:
        message["mac"] = base64.b64encode(mac).decode("ascii")
    return json.dumps(message, separators=(",", ":"))


def decode_message(text: str) -> BellMessage:
    """The bells of one message, and who it says it is from; ValueError when it is not one of ours."""
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"a message of {len(text)} characters")
    try:
        message = json.loads(text)
    except RecursionError:  # '[[[[...': nested deeper than the parser goes
        raise ValueError("nested too deep") from None
    if not isinstance(message, dict) or message.get("v") != FORMAT or not isinstance(message.get("bells"), list):
        raise ValueError("not a bell message")
    bells = []
    for entry in message["bells"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], int) and not isinstance(entry[1], bool) and 0 <= entry[1] < 1 << 63):
            raise ValueError(f"not a bell: {entry!r}"[:200])
        bells.append(Bell(entry[0], entry[1]))
    return BellMessage(tuple(bells), _sender(message.get("from")), _mac(message.get("mac")))


def decode_bells(text: str) -> list[Bell]:
    """The bells of one message; ValueError when it is not one of ours."""
    return list(decode_message(text).bells)


def _sender(value: object) -> ipaddress.IPv6Address | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 45:
        raise ValueError("'from' is not an IPv6 address")
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        raise ValueError(f"'from' is not an IPv6 address: {value!r}") from None


def _mac(value: object) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str) or len(value) > 32:
        raise ValueError("'mac' is not a MAC")
    try:
        mac = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("'mac' is not base64") from None
    if len(mac) != MAC_BYTES:
        raise ValueError(f"'mac' holds {len(mac)} bytes, not {MAC_BYTES}")
    return mac


def mac_input(sender: ipaddress.IPv6Address, owner: ipaddress.IPv6Address, prefix_id: bytes,
              bells: Sequence[Bell]) -> bytes:
    """What a bell's MAC covers: label, sender, the queue's owner, the key prefix, then each key and size.

    Every field has a fixed length or a length before it, so no two messages give the same bytes.
    """
    parts = [MAC_LABEL, sender.packed, owner.packed, prefix_id, struct.pack("!I", len(bells))]
    for bell in bells:
        key = bell.key.encode("utf-8", "surrogatepass")
        parts += [struct.pack("!I", len(key)), key, struct.pack("!Q", bell.size)]
    return b"".join(parts)
