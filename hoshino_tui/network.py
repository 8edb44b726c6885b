"""The network screen's figures, from the pages of this node and its peers (agent.scrape): pure, so testable.

Where the pages are read from (NetworkSource) is given to the screen: the running node's own page and its
peers' through the tunnel, or fixed pages for the snapshots.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from agent import netconf
from agent.config import Config
from agent.metrics import OTHER_PEER
from agent.prices import PriceTable
from agent.scrape import DEFAULT_PORT, TIMEOUT, Fetch, NodeReport, ScrapeError, fetch, node_pace, scrape
from agent.status import PeerLine, Probed, peer_lines, probe_peers, probe_targets

from .bucket import BucketObject

PERIOD = 5.0
"""Seconds between two readings of every page: a peer's page is a few objects through the bucket each."""
WINDOW = 60.0
"""The current pace is taken over the readings of the last minute (since start until there are two)."""
SILENT_RETRY = 30.0
"""Seconds before a peer whose page did not answer is asked again (its last answer is shown meanwhile)."""
DAY_HOURS = 24.0


@dataclass(frozen=True)
class NetworkSource:
    """Where the screen reads the pages: the local node's URL, and the namespace the reads are made in."""

    local_url: str
    port: int = DEFAULT_PORT
    netns: str | None = None
    get: Fetch = fetch
    timeout: float = TIMEOUT
    period: float = PERIOD
    clock: Callable[[], float] = time.time
    silent: dict[str, tuple[ScrapeError, float]] = field(default_factory=dict, compare=False)
    """The peers whose page did not answer: why, and when (monotonic) to ask again."""

    @classmethod
    def of(cls, config: Config | None) -> NetworkSource:
        """The running node's page, as its --metrics-listen says, read in its namespace like its peers'."""
        host, port = config.metrics_listen if config and config.metrics_listen else ("::", DEFAULT_PORT)
        host = {"::": "::1", "0.0.0.0": "127.0.0.1", "": "::1"}.get(host, host)
        shown = f"[{host}]" if ":" in host else host
        return cls(f"http://{shown}:{port}/metrics", port, config.netns if config else None)

    def read(self) -> tuple[NodeReport | ScrapeError, dict[str, Probed]]:
        """This node's page, then its peers' at once; from the node's namespace (the tunnel is there).
        A peer that did not answer is asked again only SILENT_RETRY later: each try is a connection's
        packets PUT into its inbox, which nobody may be reading."""
        with netconf.inside(self.netns):
            try:
                local = scrape(self.local_url, self.timeout, self.get, self.clock)
            except ScrapeError as error:
                return error, {}
            now = time.monotonic()
            resting = {peer: error for peer, (error, again) in self.silent.items() if again > now}
            targets = [peer for peer in probe_targets(local) if peer not in resting]
            probed = probe_peers(local, self.port, self.timeout, self.get, self.clock, targets)
        for peer, result in probed.items():
            if isinstance(result, ScrapeError):
                self.silent[peer] = (result, now + SILENT_RETRY)
            else:
                self.silent.pop(peer, None)
        return local, {**probed, **{peer: error for peer, error in resting.items() if peer in local.peers}}


@dataclass(frozen=True)
class Pair:
    """Bytes one node sent another, as the sender counts them."""

    sender: str
    receiver: str
    bytes: int
    packets: int


@dataclass(frozen=True)
class NetworkView:
    """What the screen draws of one reading."""

    address: str
    name: str
    node: PeerLine
    """This node, as a line of the table."""
    peers: list[PeerLine]
    pairs: list[Pair]
    names: dict[str, str]
    answering: int
    nodes: int
    dollars_per_day: float
    """Requests of the nodes that answered, per day at their current pace."""
    nat_per_node: float
    """A NAT gateway's hours for a day."""
    nat_per_day: float
    """A NAT gateway per node, hours and the bytes the answering nodes moved, per day."""
    subnets: int
    """The subnets the nodes route for (their advertised prefixes but default routes), at least one."""
    nat_per_subnet_day: float
    """A NAT gateway per subnet instead, for the same bytes."""
    read_at: float

    def name_of(self, address: str) -> str:
        """A node's name in this node's peers file, or its address as short as it reads (its last groups)."""
        if address == self.address:
            return self.name
        return self.names.get(address) or (address if len(address) <= 16 else "…" + address[-14:])

    @property
    def silent(self) -> list[PeerLine]:
        return [line for line in self.peers if line.metrics.startswith("unreachable")]


@dataclass
class NetworkHistory:
    """The readings of the last WINDOW seconds, by node address, for the current pace."""

    window: float = WINDOW
    _reports: dict[str, deque[NodeReport]] = field(default_factory=dict)

    def add(self, report: NodeReport) -> NodeReport | None:
        """Keep report; the oldest reading of that node within the window before it, or None."""
        kept = self._reports.setdefault(report.address, deque(maxlen=64))
        while kept and (report.scraped_at - kept[0].scraped_at > self.window
                        or kept[0].started_at != report.started_at):  # restarted: its counters began again
            kept.popleft()
        older = kept[0] if kept else None
        kept.append(report)
        return older


def build(local: NodeReport, probed: Mapping[str, Probed], prices: PriceTable, history: NetworkHistory) -> NetworkView:
    """The view of one reading: this node, a line per peer, who sent whom what, and the day's cost."""
    names = {peer: figures.name for peer, figures in local.peers.items() if figures.name}
    reports = [local, *(report for report in probed.values() if isinstance(report, NodeReport))]
    older = {report.address: history.add(report) for report in reports}
    rates = node_pace(local, older[local.address])
    node = PeerLine(local.address, names.get(local.address, "this node"), (), None, local.bytes_out, local.bytes_in,
                    0, 0, rates.requests, rates.dollars, "this node")
    pairs = [Pair(report.address, peer, figures.bytes_out, figures.packets_out)
             for report in reports for peer, figures in report.peers.items()
             if peer not in (OTHER_PEER, report.address) and figures.bytes_out]
    nodes = 1 + len([peer for peer in local.peers if peer not in (OTHER_PEER, local.address)])
    paces = [node_pace(report, older[report.address]) for report in reports]
    moved = sum(rates.bytes for rates in paces)
    subnets = max(1, len({route for figures in local.peers.values() for route in figures.routes
                          if not route.endswith("/0")}))
    return NetworkView(
        address=local.address, name=node.name, node=node,
        peers=[line for line in peer_lines(local, probed, older[local.address]) if line.peer != local.address],
        pairs=sorted(pairs, key=lambda pair: -pair.bytes), names=names, answering=len(reports), nodes=nodes,
        dollars_per_day=sum(rates.dollars for rates in paces), nat_per_node=prices.nat_gateway(DAY_HOURS, 0.0),
        nat_per_day=prices.nat_gateway(DAY_HOURS * nodes, moved), subnets=subnets,
        nat_per_subnet_day=prices.nat_gateway(DAY_HOURS * subnets, moved), read_at=local.scraped_at,
    )



NOT_A_NODE_KEY = "(not a node's key)"


@dataclass(frozen=True)
class InboxLine:
    """One inbox as a listing of the whole bucket shows it: what waits there for a node, and since when."""

    destination: str
    """The node's address, or NOT_A_NODE_KEY for keys the agents do not make."""
    waiting: int
    bytes: int
    oldest: float | None
    """When the oldest waiting object was sent, in seconds since the epoch (None: no key says)."""


def inboxes(listed: Iterable[BucketObject]) -> list[InboxLine]:
    """A listing of the bucket by inbox, the fullest first: the operator's view of every node's backlog."""
    grouped: dict[str, list[BucketObject]] = {}
    for obj in listed:
        grouped.setdefault(obj.destination or NOT_A_NODE_KEY, []).append(obj)
    lines = []
    for destination, objects in grouped.items():
        sent = [obj.sent_at.timestamp() for obj in objects if obj.sent_at is not None]
        lines.append(InboxLine(destination, len(objects), sum(obj.size for obj in objects),
                               min(sent) if sent else None))
    return sorted(lines, key=lambda line: (line.destination == NOT_A_NODE_KEY, -line.waiting, line.destination))
