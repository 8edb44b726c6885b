"""Three lab nodes as their metrics pages show them, one gone silent: fixed figures written by the nodes' own
collector, for the network screen's snapshots and screenshot.

'local' and 'peer' talk (a file copy, pings); 'third' was heard from ten minutes ago and its page no longer
answers. Every figure is fixed, and so is the clock (NOW), so a picture of them never changes.
"""

from __future__ import annotations

import ipaddress

from prometheus_client import CollectorRegistry, generate_latest

from agent.config import DEFAULT_NETWORK
from agent.heartbeat import Heartbeat
from agent.ip import derived_ipv4
from agent.lab.nodes import HOSTS
from agent.metrics import NodeCollector, Running, Stats
from agent.prices import load_prices
from agent.router import PeerRoutes
from agent.scrape import ScrapeError, peer_url

NOW = 1_764_633_600.0
"""The lab's clock: 2025-12-02 00:00 UTC."""
STARTED = NOW - 3 * 3600
SILENT = "third"
NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
ADDRESSES = {role: NETWORK.network_address + host for role, host in HOSTS.items()}
KEY_IDS = {"local": "5f1c0a9e3b7d2468", "peer": "a04e9c7713f2b5d1", "third": "c3d9e1f0a2b48657"}
ROUTES = {"peer": ("192.0.2.0/24",)}
# (sender, receiver): packets, mean size, objects. Bundles carry several packets an object.
TRAFFIC = {
    ("local", "peer"): (41_000, 1_180, 9_400),
    ("peer", "local"): (22_500, 96, 8_800),
    ("local", "third"): (1_200, 84, 1_190),
    ("third", "local"): (1_150, 84, 1_150),
    ("peer", "third"): (300, 84, 300),
    ("third", "peer"): (290, 84, 290),
}


def _stats(role: str) -> Stats:
    """What the node of this role counted in its three hours: its counters set at once, as so many requests
    one at a time would have left them."""
    prices = load_prices("aws-s3-standard")
    stats = Stats(price=prices.request)

    def requests(peer: ipaddress.IPv6Address | None, operation: str, count: int, payload: int) -> None:
        dollars = prices.requests("s3", operation, count, payload)
        stats.requests[("s3", operation)] += count
        stats.dollars[("s3", operation)] = stats.dollars.get(("s3", operation), 0.0) + dollars
        if peer is not None:
            stats.peer_requests[peer.compressed] += count
            stats.peer_dollars[peer.compressed] = stats.peer_dollars.get(peer.compressed, 0.0) + dollars

    for (sender, receiver), (packets, size, objects) in TRAFFIC.items():
        if role == sender:
            stats.egressed(packets, packets * size, ADDRESSES[receiver].compressed)
            requests(ADDRESSES[receiver], "put", objects, packets * size)
        elif role == receiver:
            stats.ingressed(packets, packets * size, ADDRESSES[sender].compressed)
            requests(ADDRESSES[sender], "get", objects, packets * size)
            heard = NOW - 600 if sender == SILENT else NOW - (2 if sender == "peer" else 7)
            stats.heard_from(ADDRESSES[sender].compressed, heard)
    requests(None, "list", 3 * 3600 * 2, 0)  # a listing every half second while idle
    return stats


def page(role: str, started: float = STARTED) -> str:
    """The metrics page of the node of this role, as its agent would serve it (started: when it started)."""
    registry = CollectorRegistry()
    peers = [PeerRoutes(address, derived_ipv4(address), tuple(ipaddress.ip_network(route) for route in
                                                               ROUTES.get(other, ())), other)
             for other, address in ADDRESSES.items() if other != role]
    registry.register(NodeCollector(
        _stats(role), Heartbeat(0.001, 0.5),
        {"address": ADDRESSES[role].compressed, "interface": "hoshino0", "key_id": KEY_IDS[role]},
        running=lambda: Running("running", "sqs", started), peers=lambda: peers,
    ))
    return generate_latest(registry).decode()


class LabPages:
    """Serves the lab's pages by URL as agent.scrape.fetch would, the silent node's never."""

    def __init__(self, port: int = 8081) -> None:
        self.local_url = f"http://[::1]:{port}/metrics"
        self._pages = {self.local_url: page("local"),
                       **{peer_url(ADDRESSES[role].compressed, port): page(role) for role in ("peer",)}}

    def __call__(self, url: str, timeout: float) -> str:
        if url not in self._pages:
            raise ScrapeError("timed out")
        return self._pages[url]
