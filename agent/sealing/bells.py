"""Sealed bells: a MAC under the sender's direction key proves who rang, and that it rang this queue with these keys.

The MAC key is derived from the key that seals the objects from the sender to the queue's owner
(HKDF, a label of its own), so a bell costs no key the peers file does not already give; it covers
the sender, the queue's owner and the key prefix, so a bell lifted from one queue into another, or
altered, does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.sealing.header import prefix_id
from agent.sealing.peers import PeerKey
from agent.sealing.sealer import Sealer, direction_key
from agent.transport.base import Bell
from agent.transport.bell_format import MAC_BYTES, BellMessage, mac_input

BELL_KEY_LABEL = b"hoshino bell mac key v2"
CACHED_KEYS = 4096
"""MAC keys kept (one per pair of keys); more than a network's peers, fewer than a flood of strangers."""


class BellAuthenticator:
    """Signs the bells a sealed node rings and verifies the ones it hears (agent.transport.bell_format.BellProver)."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self.address = sealer.own_address
        self._prefix_id = prefix_id(sealer.key_prefix)
        self._lock = threading.Lock()
        self._keys: dict[tuple[bytes, bytes, bool], bytes] = {}

    def sign(self, owner: ipaddress.IPv6Address, bells: Sequence[Bell]) -> bytes:
        pairs = self.sealer.bell_key_pairs(owner, sending=True)
        if not pairs:
            return b""  # not a peer: the bell goes unsigned, and a sealed receiver lists instead
        own, peer = pairs[0]
        return self._mac(self._key(own, peer, sending=True), mac_input(self.address, owner, self._prefix_id, bells))

    def verify(self, message: BellMessage, owner: ipaddress.IPv6Address) -> bool:
        if message.sender is None or len(message.mac) != MAC_BYTES:
            return False
        data = mac_input(message.sender, owner, self._prefix_id, message.bells)
        # A peer may hold a retired key beside its new one, and so may this node: a few pairs at most.
        return any(hmac.compare_digest(self._mac(self._key(own, peer, sending=False), data), message.mac)
                   for own, peer in self.sealer.bell_key_pairs(message.sender, sending=False))

    @staticmethod
    def _mac(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()[:MAC_BYTES]

    def _key(self, own: X25519PrivateKey, peer: PeerKey, sending: bool) -> bytes:
        """The MAC key of bells from this node to peer (sending) or from peer to this node."""
        slot = (own.public_key().public_bytes_raw(), peer.raw, sending)
        with self._lock:
            key = self._keys.get(slot)
        if key is None:
            key = bell_key(direction_key(own, peer, sending))
            with self._lock:
                if len(self._keys) >= CACHED_KEYS:
                    self._keys.clear()
                self._keys[slot] = key
        return key


def bell_key(direction: bytes) -> bytes:
    """The MAC key of one direction's bells: HKDF-SHA256 of that direction's object key, under a label of its own."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=BELL_KEY_LABEL).derive(direction)
