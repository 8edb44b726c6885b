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

from agent import ip
from agent.router import PeerRoutes
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
    _routing: dict[ipaddress.IPv6Address, PeerRoutes] = field(default_factory=dict)

    def routing(self) -> dict[ipaddress.IPv6Address, PeerRoutes]:
        """Each peer's addresses and routes, for the router."""
        return self._routing

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ipaddress.IPv6Address]:
        return iter(self._keys)

    def __contains__(self, address: object) -> bool:
        return address in self._keys

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
    quoted = re.escape(name)
    pattern = re.compile(rf"""^\s*(?:\[\s*peers\s*\.\s*)?(?:"{quoted}"|'{quoted}'|{quoted})\s*[=\]]""")
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
    routing: dict[ipaddress.IPv6Address, PeerRoutes] = {}
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
        if isinstance(value, dict):
            value, routing[address] = _table_form(value, address, where)
        else:
            routing[address] = PeerRoutes(address, ip.derived_ipv4(address))
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
    _check_routing(routing, written, lines, source)
    return PeerTable(keys, frozenset(owner), routing)


TABLE_EXAMPLE = ('[peers."fd5e:59b8:f71d:9a3e::e"]\nkeys = ["<its public key>"]\n'
                 'routes = ["0.0.0.0/0", "::/0"]  # optional: what it carries beyond its own addresses\n'
                 'address4 = "100.64.0.14"  # optional: its IPv4 address, if not derived\nname = "exit"  # optional')
_TABLE_FIELDS = {"keys", "routes", "address4", "name"}


def _table_form(entry: dict[str, object], address: ipaddress.IPv6Address, where: str) -> tuple[object, PeerRoutes]:
    """A peer written as a table ([peers."ADDR"]): its keys (as the one-line form would give them) and routes."""
    extra = sorted(set(entry) - _TABLE_FIELDS)
    if extra:
        raise PeersError(f"{where}: unknown field {extra[0]!r}: a peer's table holds keys, routes, address4 "
                         f"and name, e.g.\n{TABLE_EXAMPLE}")
    if "keys" not in entry:
        raise PeersError(f"{where}: no keys: add keys = [\"<its public key>\"], e.g.\n{TABLE_EXAMPLE}")
    routes = entry.get("routes", [])
    if not isinstance(routes, list) or not all(isinstance(route, str) for route in routes):
        raise PeersError(f"{where}: routes must be a list of prefixes, e.g. [\"192.0.2.0/24\"]")
    prefixes: list[ip.Network] = []
    for route in routes:
        try:
            prefix = ip.parse_prefix(route)
        except ValueError as error:
            raise PeersError(f"{where}: route {error}") from None
        if prefix in prefixes:
            raise PeersError(f"{where}: route {prefix} is listed twice")
        prefixes.append(prefix)
    address4 = ip.derived_ipv4(address)
    if "address4" in entry:
        text = entry["address4"]
        try:
            address4 = ip.parse_ipv4_node_address(text if isinstance(text, str) else repr(text))
        except ValueError as error:
            raise PeersError(f"{where}: address4: {error}") from None
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise PeersError(f"{where}: name must be a string")
    return entry["keys"], PeerRoutes(address, address4, tuple(prefixes), name)


def _check_routing(routing: dict[ipaddress.IPv6Address, PeerRoutes], written: dict[ipaddress.IPv6Address, str],
                   lines: list[str], source: str) -> None:
    """Refuse two peers on one IPv4 address, or one prefix (other than the default routes) routed to two."""
    holders: dict[object, ipaddress.IPv6Address] = {}
    for address, peer in routing.items():
        where = f"{source}{_line_of(lines, written[address])}: peer {written[address]!r}"
        if peer.address4 in holders:
            other = written[holders[peer.address4]]
            raise PeersError(f"{where}: IPv4 address {peer.address4} belongs to peer {other!r} too: "
                             f"give one of them address4 = \"...\" in its table")
        holders[peer.address4] = address
        for prefix in peer.routes:
            if prefix in ip.DEFAULT_ROUTES:
                continue  # several exit nodes may be listed: --exit-node picks one
            if prefix in holders:
                raise PeersError(f"{where}: route {prefix} is carried by peer {written[holders[prefix]]!r} too: "
                                 f"a prefix is carried by one peer")
            holders[prefix] = address


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
