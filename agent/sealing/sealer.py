"""Seal and open object bodies: a key per pair of nodes and direction, ChaCha20-Poly1305 bound to the object key."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ulid
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent import wire
from agent.sealing.header import HEADER_BYTES, NONCE_BYTES, VERSION, Header, SealError, parse_header, prefix_id
from agent.sealing.keys import key_id, load_private_keys
from agent.sealing.peers import PeerKey, Peers, PeerTable

KDF_LABEL = b"hoshino sealed object direction key"
NONCE_BOUND = 1 << 32
"""Objects one key may seal with random 96-bit nonces (NIST SP 800-38D, 8.3): a nonce repeats with a chance
below 2^-32 until then. Past it the node's key must have been replaced (docs/wire-format.md)."""
WARN_AT = NONCE_BOUND // 2
"""How many objects sealed with one key before the node warns that its key wants replacing."""
log = logging.getLogger("hoshino")


@dataclass(frozen=True, slots=True)
class Opened:
    """A sealed body opened: the authenticated sender and the plaintext body (raw packet or bundle)."""

    sender: ipaddress.IPv6Address
    body: bytes


def direction_key(private_key: X25519PrivateKey, peer: PeerKey, sending: bool) -> bytes:
    """The 32-byte key of one direction between two nodes: HKDF-SHA256 over their X25519 secret, bound to the
    sender's public key, then the recipient's. The two directions never share a key, so each key's random
    nonces are drawn by one sender only."""
    own = private_key.public_key().public_bytes_raw()
    sender, recipient = (own, peer.raw) if sending else (peer.raw, own)
    info = KDF_LABEL + bytes([VERSION]) + sender + recipient
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(private_key.exchange(peer.public))


def associated_data(header: bytes, key_prefix: str, destination: ipaddress.IPv6Address, stamp: ulid.ULID) -> bytes:
    """What the tag covers besides the body: the whole clear header, then the object key it was sealed for."""
    return header + f"{wire.inbox(key_prefix, destination)}{stamp}".encode()


class Sealer:
    """Seals this node's outgoing bodies for their destination and opens what peers sealed for it.

    Thread-safe: the loops of both directions may share one. The peer table is read once per object,
    so a reload of the peers file takes effect between objects, never within one.
    """

    def __init__(self, private_key: X25519PrivateKey | Sequence[X25519PrivateKey],
                 own_address: ipaddress.IPv6Address, peers: Peers, key_prefix: str = "",
                 report: Callable[[str], None] = log.warning) -> None:
        """private_key: this node's key, or its current key followed by retired ones it still opens with;
        report: told when a key has sealed nearly as many objects as it may."""
        keys = [private_key] if isinstance(private_key, X25519PrivateKey) else list(private_key)
        self.own_address = own_address
        self.peers = peers
        self.key_prefix = key_prefix
        self.public_key = keys[0].public_key()
        self._private_key = keys[0]
        self._own_key_id = key_id(self.public_key)
        # While this node's key is being replaced, peers may still seal to the retired one: open those too.
        self._own_keys = {key_id(key.public_key()): key for key in keys}
        self._prefix_id = prefix_id(key_prefix)
        self._lock = threading.Lock()
        self._table: PeerTable | None = None
        self.report = report
        self._ciphers: dict[tuple[bytes, bytes, bool], ChaCha20Poly1305] = {}
        self.sealed: dict[tuple[bytes, bytes], int] = {}
        """Objects sealed since start, by (this node's key id, recipient key id): each key of a direction."""
        # Per peer, the newest of its listed keys that it has proven (an object sealed with it opened): we
        # seal to that key, so a peer that switched to its new key keeps receiving without waiting for every
        # peers file, and never move back to one listed before it, which may be a leaked old key.
        self._proven: dict[ipaddress.IPv6Address, bytes] = {}

    @classmethod
    def from_files(cls, key_file: str | Path, peers_file: str | Path, own_address: ipaddress.IPv6Address,
                   key_prefix: str = "") -> Sealer:
        """A Sealer from --key-file and --peers; KeyFileError or PeersError says what is wrong."""
        return cls(load_private_keys(key_file), own_address, Peers(peers_file), key_prefix)

    def seal(self, object_key: str, body: bytes) -> bytes:
        """Seal a raw packet or bundle for the object key it will be PUT under.

        SealError 'unknown_peer' when the destination is not in the peers file; ValueError for a key
        or body this node never writes.
        """
        key = wire.parse_key(object_key, self.key_prefix)
        if wire.body_format(body) not in ("raw-ipv6", "bundle-v1", "bundle-v2"):
            raise ValueError("only a raw IPv6 packet or a bundle is sealed")
        table = self.peers.table
        recipient = self._recipient_key(table, key.destination)
        nonce = os.urandom(NONCE_BYTES)
        header = Header(self.own_address, self._own_key_id, key.destination, recipient.id, self._prefix_id,
                        key.ulid, nonce).pack()
        cipher = self._cipher(table, recipient, sending=True)
        self._count(recipient.id)
        return header + cipher.encrypt(nonce, body, associated_data(header, self.key_prefix, key.destination,
                                                                    key.ulid))

    def open(self, object_key: str, body: bytes) -> Opened:
        """Authenticate and decrypt a body found under object_key; SealError(reason) says why not."""
        header = parse_header(body)
        try:
            key = wire.parse_key(object_key, self.key_prefix)
        except wire.WireError as error:
            raise SealError("relocated", str(error)) from None
        if (header.destination, header.ulid, header.prefix_id) != (key.destination, key.ulid, self._prefix_id):
            raise SealError("relocated", f"sealed for {header.destination}/{header.ulid}"
                            f"{'' if header.prefix_id == self._prefix_id else ' under another key prefix'}, "
                            f"found at {object_key}")
        if header.destination != self.own_address:
            raise SealError("relocated", f"sealed for {header.destination}, this node is {self.own_address}")
        table = self.peers.table
        sender = table.find(header.sender, header.sender_key)
        if sender is None:
            known = "no key with id " + header.sender_key.hex() if table.keys_of(header.sender) else "not a peer"
            raise SealError("unknown_sender", f"{header.sender}: {known}")
        own = self._own_keys.get(header.recipient_key)
        if own is None:
            raise SealError("wrong_key", f"{header.sender} sealed it for key id {header.recipient_key.hex()}, "
                            f"this node's is {self._own_key_id.hex()}")
        cipher = self._cipher(table, sender, sending=False, own=own)
        clear = body[:HEADER_BYTES]
        try:
            # A view, not a slice: copying a 1 MiB body would cost more than decrypting it.
            plaintext = cipher.decrypt(header.nonce, memoryview(body)[HEADER_BYTES:],
                                       associated_data(clear, self.key_prefix, key.destination, key.ulid))
        except InvalidTag:
            raise SealError("forged", f"claims to be from {header.sender}; authentication failed") from None
        self._learn(table, header.sender, header.sender_key)
        return Opened(header.sender, plaintext)

    def bell_key_pairs(self, peer: ipaddress.IPv6Address,
                       sending: bool) -> list[tuple[X25519PrivateKey, PeerKey]]:
        """The (own key, peer's key) pairs whose direction key authenticates bells (agent.sealing.bells): to ring
        peer, the pair this node seals with; to hear it, every pair it opens with. [] for a stranger."""
        table = self.peers.table
        if sending:
            try:
                return [(self._private_key, self._recipient_key(table, peer))]
            except SealError:
                return []
        return [(own, key) for own in self._own_keys.values() for key in table.keys_of(peer)]

    def _recipient_key(self, table: PeerTable, destination: ipaddress.IPv6Address) -> PeerKey:
        """The newest listed key the destination has proven; before it has proven one, its first listed key."""
        keys = table.keys_of(destination)
        if not keys:
            raise SealError("unknown_peer", f"{destination} is not in the peers file")
        proven = self._proven.get(destination)
        return next((key for key in keys if key.id == proven), keys[0])

    def _learn(self, table: PeerTable, sender: ipaddress.IPv6Address, sender_key: bytes) -> None:
        """Move to the key an object from sender proved, if it is listed after the one we seal to now.

        A peer's keys are listed oldest first. Time cannot order them: a ULID is whatever its sender
        says, so the holder of a leaked old key could always stamp its objects newer.
        """
        order = [key.id for key in table.keys_of(sender)]
        with self._lock:
            current = self._proven.get(sender)
            if current is None or current not in order or order.index(sender_key) > order.index(current):
                self._proven[sender] = sender_key

    def _count(self, recipient: bytes) -> None:
        """Count an object sealed to recipient; warn once its key nears the nonce bound."""
        slot = (self._own_key_id, recipient)
        with self._lock:
            count = self.sealed[slot] = self.sealed.get(slot, 0) + 1
        if count == WARN_AT:
            self.report(f"this node's key {self._own_key_id.hex()} has sealed {count} objects for key "
                        f"{recipient.hex()}, half of the {NONCE_BOUND} one key may seal: replace this node's key "
                        f"(hoshino-agent genkey; docs/wire-format.md)")

    def _cipher(self, table: PeerTable, peer: PeerKey, sending: bool,
                own: X25519PrivateKey | None = None) -> ChaCha20Poly1305:
        """The cipher of one direction of a pair, derived once per pair of keys; the cache drops keys a reload
        removed."""
        own = own or self._private_key
        slot = (own.public_key().public_bytes_raw(), peer.raw, sending)
        with self._lock:
            if table is not self._table:
                self._ciphers = {key: c for key, c in self._ciphers.items() if table.holds(key[1])}
                self._proven = {a: k for a, k in self._proven.items() if table.find(a, k)}
                self._table = table
            cipher = self._ciphers.get(slot)
            if cipher is None:
                cipher = self._ciphers[slot] = ChaCha20Poly1305(direction_key(own, peer, sending))
            return cipher
