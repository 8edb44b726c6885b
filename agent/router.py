"""The routing table: which node a packet goes to, and which addresses each sender may use.

Cryptokey routing, as WireGuard's AllowedIPs: a peer is its key(s) and the prefixes it may send
from and receive for (its own two addresses always, plus the routes it carries: a LAN, or 0.0.0.0/0
and ::/0 for an exit node). Egress asks next_hop(); ingress asks verdict(). Object keys always name
the next hop's IPv6 address. A node without a peers file (unsealed) routes its network's /64 and
the IPv4 addresses derived from it, nothing else.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from agent import ip

V = TypeVar("V")


class RouteError(ValueError):
    """Routing settings that cannot work together, with the fix."""


class Route(NamedTuple):
    """Where a packet goes: the route's label (a prefix, bounded by the peers file) and the next hop."""

    label: str
    hop: ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class PeerRoutes:
    """What the peers file says of one peer's addresses: its own two, and the routes it carries."""

    address: ipaddress.IPv6Address
    address4: ipaddress.IPv4Address
    routes: tuple[ip.Network, ...] = ()
    name: str = ""


class PeerSource(Protocol):
    """A loaded peers file, as far as routing is concerned."""

    def routing(self) -> Mapping[ipaddress.IPv6Address, PeerRoutes]: ...


class Prefixes(Generic[V]):
    """Longest prefix match over a fixed set of prefixes of both families: one dict per prefix length."""

    def __init__(self, entries: Iterable[tuple[ip.Network, V]] = ()) -> None:
        self._tables: dict[tuple[int, int], dict[int, V]] = {}
        for network, value in entries:
            key = (network.version, network.prefixlen)
            self._tables.setdefault(key, {})[int(network.network_address) >> (network.max_prefixlen
                                                                              - network.prefixlen)] = value
        # Longest first, per family: the first hit is the best.
        self._lengths = {
            family: sorted((length for version, length in self._tables if version == family), reverse=True)
            for family in (4, 6)
        }

    def lookup(self, address: ip.Address) -> V | None:
        """The value of the longest prefix holding address, or None."""
        bits = address.max_prefixlen
        number = int(address)
        for length in self._lengths[address.version]:
            found = self._tables[(address.version, length)].get(number >> (bits - length))
            if found is not None:
                return found
        return None

    def __contains__(self, address: ip.Address) -> bool:
        return self.lookup(address) is not None


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """This node's side of routing, from its flags."""

    address: ipaddress.IPv6Address
    network: ipaddress.IPv6Network
    address4: ipaddress.IPv4Address | None = None
    """None: derived from address (ip.derived_ipv4)."""
    advertised: tuple[ip.Network, ...] = ()
    """Prefixes this node carries for its peers: --advertise-routes, and both default routes for an exit node."""
    accept_routes: bool = False
    """Route to the prefixes peers carry (their LANs); an exit node's default routes need exit_node."""
    exit_node: ipaddress.IPv6Address | str | None = None
    """The peer to send everything through: its address, or its name in the peers file (a reload that
    moves the name moves the exit node)."""

    @property
    def own4(self) -> ipaddress.IPv4Address:
        return self.address4 if self.address4 is not None else ip.derived_ipv4(self.address)


_ITSELF = ipaddress.IPv6Address("::")
"""The next hop of a destination in the network's /64: the destination itself."""
_DERIVED = ipaddress.IPv6Address("::1")
"""The next hop of an IPv4 address in 100.64.0.0/10 for a node without a peers file: ip.node_of_derived."""


@dataclass(frozen=True, slots=True)
class Table:
    """One build of the routing table from one peers file: never changed, so a reader sees one whole table."""

    hops: Prefixes[Route]
    allowed: dict[ipaddress.IPv6Address, Prefixes[bool]]
    """Per peer, the prefixes it may send from; empty when there is no peers file."""
    routes: tuple[tuple[ip.Network, ipaddress.IPv6Address], ...]
    """Every route to a peer, for people (the dashboard)."""
    exit: ipaddress.IPv6Address | None = None
    """The exit node in use: the peer the default routes go to, or None."""


class Router:
    """The one routing table of a node, rebuilt when its peers file is reloaded."""

    def __init__(self, settings: RouterSettings,
                 peers: Callable[[], PeerSource] | None = None) -> None:
        """peers: the current peers file (sealed nodes); None for a node without one."""
        if peers is None and (settings.advertised or settings.accept_routes or settings.exit_node):
            raise RouteError("routing beyond this node's own addresses needs sealing: pass --key-file and --peers")
        self.settings = settings
        self.address = settings.address
        self.address4 = settings.own4
        self._peers = peers
        self._own = Prefixes[bool]([(ipaddress.ip_network(self.address), True),
                                    (ipaddress.ip_network(self.address4), True),
                                    *((prefix, True) for prefix in settings.advertised)])
        self._carried = Prefixes((prefix, str(prefix)) for prefix in settings.advertised)
        self._lock = threading.Lock()
        self._source: PeerSource | None = None
        self._table = self._build(None)
        self.problem = ""
        """Why the last reloaded peers file could not be routed (the table before it stays), or ''."""
        if peers is not None:
            # Checked now, not at the first packet: settings that contradict the peers file stop the start.
            self._source = peers()
            self._table = self._build(self._source)
            if settings.exit_node is not None and self._table.exit is None:
                listed = "it" if isinstance(settings.exit_node, ipaddress.IPv6Address) \
                    else f'a peer with name = "{settings.exit_node}"'
                raise RouteError(f"--exit-node {settings.exit_node}: the peers file must list {listed} with "
                                 f'routes = ["0.0.0.0/0", "::/0"], the addresses an exit node sends from')

    @classmethod
    def unsealed(cls, address: ipaddress.IPv6Address, network: ipaddress.IPv6Network) -> Router:
        """The router of a node without a peers file and without routing flags."""
        return cls(RouterSettings(address, network))

    def table(self) -> Table:
        """The table for the current peers file, built again after a reload."""
        if self._peers is None:
            return self._table
        source = self._peers()
        if source is not self._source:
            with self._lock:
                if source is not self._source:
                    try:
                        self._table, self.problem = self._build(source), ""
                    except RouteError as error:  # a reload must not stop traffic: keep routing as before
                        self.problem = str(error)
                    self._source = source
        return self._table

    def _build(self, source: PeerSource | None) -> Table:
        settings = self.settings
        network, space4 = str(settings.network), str(ip.IPV4_NETWORK)
        hops: list[tuple[ip.Network, Route]] = [(settings.network, Route(network, _ITSELF))]
        allowed: dict[ipaddress.IPv6Address, Prefixes[bool]] = {}
        routes: list[tuple[ip.Network, ipaddress.IPv6Address]] = []
        exit_hop = None
        if source is None:
            hops.append((ip.IPV4_NETWORK, Route(space4, _DERIVED)))
        else:
            peers = source.routing()
            exit_hop = _exit_of(settings.exit_node, peers)
            for peer in peers.values():
                own = [ipaddress.ip_network(peer.address), ipaddress.ip_network(peer.address4)]
                allowed[peer.address] = Prefixes((prefix, True) for prefix in (*own, *peer.routes))
                if peer.address4 == self.address4 and peer.address != self.address:
                    raise RouteError(f"peer {peer.address} has this node's IPv4 address {self.address4}: "
                                     f"give one of them another (--address4, or address4 in the peers file)")
                hops.append((own[1], Route(space4, peer.address)))  # one label for all: bounded
                routes.append((own[1], peer.address))
                for prefix in peer.routes:
                    default = prefix in ip.DEFAULT_ROUTES
                    if (peer.address == exit_hop) if default else settings.accept_routes:
                        hops.append((prefix, Route(str(prefix), peer.address)))
                        routes.append((prefix, peer.address))
        return Table(Prefixes(hops), allowed, tuple(routes), exit_hop)

    def route(self, destination: ip.Address) -> Route | None:
        """The route of a packet for destination (the node whose inbox it goes to), or None."""
        found = self.table().hops.lookup(destination)
        if found is None:
            return None
        if found.hop == _ITSELF:
            return Route(found.label, destination)  # type: ignore[arg-type]  # only IPv6 ones are in the /64
        if found.hop == _DERIVED:
            return Route(found.label, ip.node_of_derived(destination, self.settings.network))  # type: ignore[arg-type]
        return found

    def next_hop(self, destination: ip.Address) -> ipaddress.IPv6Address | None:
        """The node whose inbox a packet for destination goes to, or None when no route holds it."""
        found = self.route(destination)
        return found.hop if found is not None else None

    def label_in(self, source: ip.Address, destination: ip.Address) -> str:
        """The route a delivered packet took, for the per-route counters: the prefix this node carries
        that holds its destination, or else the route that holds its source."""
        carried = self._carried.lookup(destination) if not self.is_own(destination) else None
        if carried is not None:
            return carried
        found = self.table().hops.lookup(source)
        return found.label if found is not None else "other"

    def is_own(self, address: ip.Address) -> bool:
        """True for this node's own IPv6 or IPv4 address."""
        return address == self.address or address == self.address4

    def may_originate(self, source: ip.Address) -> bool:
        """Whether this node may send a packet from source: its own addresses, or a prefix it carries."""
        return source in self._own

    def routed_here(self, destination: ip.Address) -> bool:
        """Whether a packet for destination is this node's to deliver: its own, or a prefix it carries."""
        return destination in self._own

    def source_verdict(self, source: ip.Address, sender: ipaddress.IPv6Address | None) -> str:
        """Why a packet from this source must not come from this sender, or ''.

        sender is the authenticated sender of a sealed object; None for an unsealed one, whose
        source need only lie in the network (or its IPv4 space).
        """
        if sender is None:
            inside = source in self.settings.network if source.version == 6 else source in ip.IPV4_NETWORK
            return "" if inside else "foreign_source"
        allowed = self.table().allowed.get(sender)
        if allowed is None:
            return "spoofed_source" if source != sender else ""
        return "" if source in allowed else "spoofed_source"

    def routes(self) -> tuple[tuple[ip.Network, ipaddress.IPv6Address], ...]:
        """Every prefix routed to a peer, and that peer: for the dashboard."""
        return self.table().routes

    def exit_hop(self) -> ipaddress.IPv6Address | None:
        """The exit node the current peers file gives --exit-node, or None (none asked, or it is gone)."""
        return self.table().exit


def _exit_of(chosen: ipaddress.IPv6Address | str | None,
             peers: Mapping[ipaddress.IPv6Address, PeerRoutes]) -> ipaddress.IPv6Address | None:
    """The peer --exit-node names (by address or by name) if it carries both default routes, else None."""
    if chosen is None:
        return None
    if isinstance(chosen, ipaddress.IPv6Address):
        found = [peers[chosen]] if chosen in peers else []
    else:
        found = [peer for peer in peers.values() if peer.name == chosen]
        if len(found) > 1:
            raise RouteError(f"--exit-node {chosen}: {len(found)} peers have this name in the peers file "
                             f"({', '.join(str(peer.address) for peer in found)}): give each its own")
    if found and set(ip.DEFAULT_ROUTES) <= set(found[0].routes):
        return found[0].address
    return None
