"""The peers file: which IPv6 address holds which public keys, reloadable while traffic flows."""

from __future__ import annotations

import ipaddress
import re
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from agent.sealing.keys import KeyFileError, decode_public_key, key_id, public_bytes
from agent.sealing.trusted_file import UntrustedFile, read_trusted

PEERS_FILE_LIMIT = 1 << 20
"""A peers file is about 80 bytes a peer: a mebibyte is some ten thousand peers."""
EXAMPLE = '[peers]\n"fd5e:59b8:f71d:9a3e::b" = "<its public key, from: hoshino-agent pubkey KEYFILE>"'


class PeersError(ValueError):
    """A peers file that cannot be used, with a message naming the place and the fix."""


@dataclass(frozen=True, slots=True)
class PeerKey:
    """One public key of a peer, with the forms sealing needs."""

    public: X25519PublicKey
    raw: bytes
    id: bytes

    @classmethod
    def of(cls, public: X25519PublicKey) -> PeerKey:
        return cls(public, public_bytes(public), key_id(public))


@dataclass(frozen=True)
class PeerTable:
    """One loaded peers file; never changed after loading, so a reader never sees half a reload."""

    _keys: dict[ipaddress.IPv6Address, tuple[PeerKey, ...]] = field(default_factory=dict)
    _raw: frozenset[bytes] = frozenset()

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ipaddress.IPv6Address]:
        return iter(self._keys)

    def keys_of(self, address: ipaddress.IPv6Address) -> tuple[PeerKey, ...]:
        """The peer's keys in file order (the first is the one to seal to), or () for a stranger."""
        return self._keys.get(address, ())

    def find(self, address: ipaddress.IPv6Address, key_id: bytes) -> PeerKey | None:
        """The key of this peer with this id, or None."""
        for key in self._keys.get(address, ()):
            if key.id == key_id:
                return key
        return None

    def holds(self, raw: bytes) -> bool:
        """Whether any peer has this public key (raw bytes)."""
        return raw in self._raw


def _line_of(lines: list[str], name: str) -> str:
    """':N' for the line that defines the peer, or '' when it cannot be told."""
    pattern = re.compile(rf"""^\s*(?:"{re.escape(name)}"|'{re.escape(name)}'|{re.escape(name)})\s*=""")
    for number, line in enumerate(lines, 1):
        if pattern.match(line):
            return f":{number}"
    return ""


def _unusable(address: ipaddress.IPv6Address) -> str:
    """Why no node of the tunnel can have this address (its objects would never match), or ''."""
    if address.scope_id:
        return f"has a zone (%{address.scope_id}): a node's address has none"
    for test, what in ((address.is_unspecified, "the unspecified address"), (address.is_loopback, "loopback"),
                       (address.is_multicast, "multicast"), (address.is_link_local, "link-local")):
        if test:
            return f"is {what}, never a node's address"
    return ""


def parse_peers(text: str, source: str = "peers file") -> PeerTable:
    """Check and load the text of a peers file; PeersError names the peer, its line and the fix."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PeersError(f"{source}: not valid TOML: {error}") from None
    extra = sorted(set(document) - {"peers"})
    if extra:
        raise PeersError(f"{source}: unknown key or table {extra[0]!r}: the file holds one [peers] table, e.g.\n"
                         f"{EXAMPLE}")
    if "peers" not in document:
        raise PeersError(f"{source}: no [peers] table: add one, e.g.\n{EXAMPLE}")
    table = document["peers"]
    if not isinstance(table, dict):
        raise PeersError(f"{source}: 'peers' must be a table ([peers]), e.g.\n{EXAMPLE}")
    lines = text.splitlines()
    keys: dict[ipaddress.IPv6Address, tuple[PeerKey, ...]] = {}
    written: dict[ipaddress.IPv6Address, str] = {}
    owner: dict[bytes, str] = {}
    for name, value in table.items():
        where = f"{source}{_line_of(lines, name)}: peer {name!r}"
        try:
            address = ipaddress.IPv6Address(name)
        except ValueError:
            raise PeersError(f"{where}: not an IPv6 address; write the node's address, "
                             f"e.g. \"fd5e:59b8:f71d:9a3e::b\"") from None
        if problem := _unusable(address):
            raise PeersError(f"{where}: {problem}; write the node's address in the tunnel's network, "
                             f"e.g. \"fd5e:59b8:f71d:9a3e::b\"")
        if address in written:
            raise PeersError(f"{where}: the same address as {written[address]!r}: list each peer once, "
                             f"its keys in one list")
        written[address] = name
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise PeersError(f"{where}: give a public key, or a list of keys during a rotation, "
                             f"e.g. \"BASE64\" or [\"OLD\", \"NEW\"]")
        peer_keys: list[PeerKey] = []
        for key_text in texts:
            try:
                key = PeerKey.of(decode_public_key(key_text))
            except KeyFileError as error:
                raise PeersError(f"{where}: key {key_text!r} {error}: paste the line "
                                 f"hoshino-agent pubkey prints for that node's key file") from None
            if key.raw in owner:
                other = owner[key.raw]
                raise PeersError(f"{where}: key {key_text!r} is listed "
                                 f"{'twice' if other == name else f'for {other!r} too'}: "
                                 f"each node has keys of its own")
            if any(key.id == known.id for known in peer_keys):
                raise PeersError(f"{where}: two keys share the id {key.id.hex()}: make a new key for one of them")
            owner[key.raw] = name
            peer_keys.append(key)
        keys[address] = tuple(peer_keys)
    return PeerTable(keys, frozenset(owner))


def load_peers(path: str | Path) -> PeerTable:
    """Read and check a peers file: it decides who is a member, so no one but its owner (root or the node's
    user) may change it."""
    try:
        text = read_trusted(path, PEERS_FILE_LIMIT, "a peers file", secret=False).decode("utf-8")
    except UntrustedFile as error:
        raise PeersError(str(error)) from None
    except FileNotFoundError:
        raise PeersError(f"{path} does not exist: write a peers file, e.g.\n{EXAMPLE}") from None
    except UnicodeDecodeError:
        raise PeersError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise PeersError(f"cannot read {path}: {error.strerror}") from None
    return parse_peers(text, str(path))


class Peers:
    """A peers file, loaded and reloadable: a reload replaces the whole table or, failing, nothing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._table = load_peers(self.path)

    @property
    def table(self) -> PeerTable:
        """The current table: take it once per object, so one object sees one file."""
        return self._table

    def reload(self) -> PeerTable:
        """Load the file again and switch to it; on PeersError the old table stays in force."""
        with self._lock:  # two reloads at once must not finish in the wrong order
            table = load_peers(self.path)
            self._table = table
        return table
