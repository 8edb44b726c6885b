"""The node's counters, and their Prometheus exposition (hoshino_*_total, labels for reasons)."""

from __future__ import annotations

import ipaddress
import socket
import statistics
import threading
from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.registry import Collector

from agent import __version__
from agent.heartbeat import Heartbeat
from agent.pacing import Paced
from agent.router import PeerRoutes

READ_OPERATIONS = ("get", "list", "head")
WRITE_OPERATIONS = ("put", "delete")
UNBILLED_ERRORS = ("unreachable", "timeout")
"""Requests that failed before the service could answer them cost nothing."""
QUANTILES = (0.5, 0.9, 0.99)
"""The quantiles of recent times the metrics page gives (hoshino_recent_seconds)."""
STAGES = ("queued", "found", "fetched", "held")
"""Where an object's time goes, each a Stats.stage: queued, from its first packet's read to its PUT's start (the
sender's); found, from its key's time to the listing or bell that found it (the sender's estimate of the bucket's
clock against the receiver's: between two nodes it carries their difference, which the sum of both ways cancels,
so it may be below zero); fetched, from then to its GET's end; held, from then to its delivery (waiting for
objects before it in key order). Its PUT and GET themselves are the requests' own times."""
SHUTDOWN_POLL = 0.05
"""How soon the metrics listener's thread sees that it is to stop."""
PriceOf = Callable[[str, str, int], float]
"""Dollars for one request: (service, operation, payload bytes) -> dollars."""
OTHER_PEER = "other"
"""The peer label of every address the bound leaves out: not in the peers file, or past the unsealed limit."""
UNLISTED_PEERS = 64
"""How many peers a node without a peers file labels by address; the rest are OTHER_PEER."""


class PeerLabels:
    """The `peer` label of an address, bounded so a writer to the bucket cannot grow the metrics page.

    A sealed node labels the peers its peers file lists (listed() is read at each call, so a reload
    counts), everyone else as OTHER_PEER; an unsealed node has no list: the first `limit` addresses it
    meets are labelled by themselves, the rest as OTHER_PEER.
    """

    def __init__(self, listed: Callable[[], Container[ipaddress.IPv6Address]] | None = None,
                 limit: int = UNLISTED_PEERS) -> None:
        self._listed = listed
        self._limit = limit
        self._labels: dict[ipaddress.IPv6Address, str] = {}
        """The labels given so far: an address's text is made once, not for every packet."""

    def __call__(self, address: ipaddress.IPv6Address | None) -> str:
        """Called with the Stats lock held, so the labels given need no lock of their own."""
        if address is None:
            return OTHER_PEER
        label = self._labels.get(address)
        if self._listed is not None:
            if address not in self._listed():
                return OTHER_PEER
        elif label is None and len(self._labels) >= self._limit:
            return OTHER_PEER
        if label is None:
            label = self._labels[address] = address.compressed
        return label


def quantile_of(ordered: Sequence[float], quantile: float) -> float:
    """The given quantile of sorted, non-empty samples (the nearest rank at or above it)."""
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Stats:
    """Thread-safe counters of one node; cheap to bump, cheap to copy.

    Requests are counted by (service, operation) for every service the node talks to (s3, sqs),
    priced as they are counted when a price function is given, so the cost is known at any time.
    """

    def __init__(self, price: PriceOf | None = None, peer_labels: PeerLabels | None = None) -> None:
        self._lock = threading.Lock()
        self._price = price
        self.peer_labels = peer_labels or PeerLabels()
        """Bounds the `peer` label; a sealed node replaces it with one that reads its peers file."""
        self.packets_out = 0
        self.bytes_out = 0
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_read = 0
        self.undeletable = 0
        self.pace: Counter[str] = Counter()
        """Packets delivered 'paced' (at the pace they were sent) or 'at_once'."""
        self.pace_rate = 0.0
        """The pace the last paced object was delivered at, in packets per second."""
        self.delivery_backlog = 0
        """Objects fetched and waiting for their turn to be delivered, when delivery last took one."""
        self.requests: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()
        self.dollars: dict[tuple[str, str], float] = {}
        self.dropped: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.route_packets: Counter[tuple[str, str]] = Counter()
        self.route_bytes: Counter[tuple[str, str]] = Counter()
        """By (route, direction): what each route carried, the route a prefix of the routing table."""
        self.peer_packets: Counter[tuple[str, str]] = Counter()
        self.peer_bytes: Counter[tuple[str, str]] = Counter()
        """By (peer label, direction): packets PUT for that peer ('out'), delivered from it ('in')."""
        self.peer_requests: Counter[str] = Counter()
        self.peer_dollars: dict[str, float] = {}
        """The requests an object to or from the peer took (its PUT and bell, its GET), and their cost."""
        self.peer_heard: dict[str, float] = {}
        """When the newest object delivered from the peer was sent (its key's time)."""
        self._latency: dict[tuple[str, str], deque[float]] = {}
        self.relay_outcomes: Counter[str] = Counter()
        """An exit node's relayed TCP connections (agent.relay), by outcome: relayed, unreachable, refused..."""
        self.relay_connections = 0
        """Connections the exit node relays now."""

    @property
    def s3_ops(self) -> Counter[str]:
        """S3 requests by operation."""
        with self._lock:
            return Counter({op: n for (service, op), n in self.requests.items() if service == "s3"})

    @property
    def s3_errors(self) -> Counter[tuple[str, str]]:
        """Failed S3 requests by (operation, kind)."""
        with self._lock:
            return Counter({(op, kind): n for (service, op, kind), n in self.errors.items() if service == "s3"})

    def read_from_device(self) -> None:
        """One packet read from the device: it will be egressed, ignored or dropped, exactly once."""
        with self._lock:
            self.packets_read += 1

    def delivered_paced(self, paced: Paced) -> None:
        """How one object's packets went into the device (agent.pacing)."""
        with self._lock:
            self.pace["paced"] += paced.paced
            self.pace["at_once"] += paced.at_once
            if paced.rate:
                self.pace_rate = paced.rate

    def undeletable_object(self) -> None:
        with self._lock:
            self.undeletable += 1

    def peer_label(self, address: ipaddress.IPv6Address | None) -> str:
        """The `peer` label of an address (PeerLabels): take it once per object, not once per packet."""
        with self._lock:
            return self.peer_labels(address)

    def egressed(self, packets: int, size: int, peer: str = "") -> None:
        """Packets PUT into the bucket, for the peer labelled peer (peer_label) when it is known."""
        with self._lock:
            self.packets_out += packets
            self.bytes_out += size
            if peer:
                self.peer_packets[(peer, "out")] += packets
                self.peer_bytes[(peer, "out")] += size

    def ingressed(self, packets: int, size: int, peer: str = "") -> None:
        """Packets delivered into the device, from the peer labelled peer (peer_label) when it is known."""
        with self._lock:
            self.packets_in += packets
            self.bytes_in += size
            if peer:
                self.peer_packets[(peer, "in")] += packets
                self.peer_bytes[(peer, "in")] += size

    def peer_request(self, peer: str, service: str, operation: str, payload: int = 0) -> None:
        """One request made for an object to or from a peer (already counted and priced by request())."""
        dollars = self._price(service, operation, payload) if self._price is not None else 0.0
        with self._lock:
            self.peer_requests[peer] += 1
            self.peer_dollars[peer] = self.peer_dollars.get(peer, 0.0) + dollars

    def heard_from(self, peer: str, sent_at: float) -> None:
        """An object from a peer, sent at sent_at, is being delivered."""
        with self._lock:
            self.peer_heard[peer] = max(sent_at, self.peer_heard.get(peer, 0.0))

    def routed(self, direction: str, route: str, size: int, packets: int = 1) -> None:
        """Packets sent ('out', queued for their next hop) or delivered ('in') by this route, size bytes in all."""
        with self._lock:
            self.route_packets[(route, direction)] += packets
            self.route_bytes[(route, direction)] += size

    def relayed(self, outcome: str) -> None:
        """One TCP connection from a peer, relayed by the exit node or not (and why)."""
        with self._lock:
            self.relay_outcomes[outcome] += 1

    def relay_open(self, change: int) -> None:
        with self._lock:
            self.relay_connections += change

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def ignore(self, reason: str) -> None:
        with self._lock:
            self.ignored[reason] += 1

    def request(self, service: str, operation: str, seconds: float, error_kind: str = "", payload: int = 0) -> None:
        """Count one request, its latency and cost, and its failure if it failed."""
        billed = error_kind not in UNBILLED_ERRORS
        dollars = self._price(service, operation, payload) if self._price is not None and billed else 0.0
        with self._lock:
            self.requests[(service, operation)] += 1
            if dollars:
                self.dollars[(service, operation)] = self.dollars.get((service, operation), 0.0) + dollars
            if error_kind:
                self.errors[(service, operation, error_kind)] += 1
            else:
                self._latency.setdefault((service, operation), deque(maxlen=64)).append(seconds)

    def stage(self, name: str, seconds: float) -> None:
        """How long one object spent in one stage of its way (STAGES), recent samples kept as requests' are."""
        with self._lock:
            self._latency.setdefault(("stage", name), deque(maxlen=64)).append(seconds)

    def latency_medians(self, service: str = "s3") -> dict[str, float]:
        """Median of the recent successful requests' latency, by operation."""
        with self._lock:
            samples = {op: list(values) for (name, op), values in self._latency.items() if name == service and values}
        return {op: statistics.median(values) for op, values in samples.items()}

    def latency_quantile(self, operation: str, quantile: float, service: str = "s3") -> float | None:
        """The given quantile (0.5: the median) of the recent successful requests' latency; None before the first."""
        with self._lock:
            values = sorted(self._latency.get((service, operation), ()))
        return quantile_of(values, quantile) if values else None

    def copy(self) -> dict[str, Any]:
        """A consistent copy of every counter."""
        with self._lock:
            return {
                "packets_out": self.packets_out,
                "bytes_out": self.bytes_out,
                "packets_in": self.packets_in,
                "bytes_in": self.bytes_in,
                "packets_read": self.packets_read,
                "undeletable": self.undeletable,
                "requests": dict(self.requests),
                "errors": dict(self.errors),
                "dollars": dict(self.dollars),
                "dropped": dict(self.dropped),
                "ignored": dict(self.ignored),
                "pace": dict(self.pace),
                "pace_rate": self.pace_rate,
                "delivery_backlog": self.delivery_backlog,
                "route_packets": dict(self.route_packets),
                "route_bytes": dict(self.route_bytes),
                "peer_packets": dict(self.peer_packets),
                "peer_bytes": dict(self.peer_bytes),
                "peer_requests": dict(self.peer_requests),
                "peer_dollars": dict(self.peer_dollars),
                "peer_heard": dict(self.peer_heard),
                "latency": {kind: list(values) for kind, values in self._latency.items() if values},
                "relay_outcomes": dict(self.relay_outcomes),
                "relay_connections": self.relay_connections,
            }


@dataclass(frozen=True, slots=True)
class Running:
    """How a node runs now, for its metrics page: what `hoshino-agent status` tells of it."""

    state: str
    """starting, running, degraded, stopping, stopped or failed."""
    wakeup: str
    """What wakes it: 'sqs' (a doorbell) or 'poll' (the heartbeat alone)."""
    started_at: float
    """When it started, in seconds since the epoch (0: not yet)."""


class NodeCollector(Collector):
    """Exposes a node's Stats and heartbeat in Prometheus conventions."""

    def __init__(self, stats: Stats, heartbeat: Heartbeat, info: dict[str, str],
                 clock_offset: Callable[[], float | None] | None = None, *,
                 running: Callable[[], Running] | None = None,
                 peers: Callable[[], Iterable[PeerRoutes]] | None = None) -> None:
        """running: the node's state now; peers: the peers its peers file lists (a sealed node)."""
        self._stats = stats
        self._heartbeat = heartbeat
        self._info = info
        self._clock_offset = clock_offset
        self._running = running
        self._peers = peers

    def collect(self) -> Iterator[Any]:
        data = self._stats.copy()
        for stem, value, doc in (
            ("packets_egressed", data["packets_out"], "IPv6 packets put into the bucket."),
            ("bytes_egressed", data["bytes_out"], "Bytes of IPv6 packets put into the bucket."),
            ("packets_ingressed", data["packets_in"], "IPv6 packets taken from the bucket and delivered."),
            ("bytes_ingressed", data["bytes_in"], "Bytes of IPv6 packets delivered from the bucket."),
            ("packets_read", data["packets_read"],
             "Packets read from the device; each is egressed, ignored or dropped."),
            ("undeletable_objects", data["undeletable"], "Handled objects the bucket would not delete (given up)."),
        ):
            yield CounterMetricFamily(f"hoshino_{stem}", doc, value=value)
        for stem, counts, doc in (
            ("dropped_packets", data["dropped"], "Packets or objects lost, by reason."),
            ("ignored_packets", data["ignored"], "Packets from the device not meant for the tunnel, by reason."),
        ):
            family = CounterMetricFamily(f"hoshino_{stem}", doc, labels=["reason"])
            for reason, count in sorted(counts.items()):
                family.add_metric([reason], count)
            yield family
        pace = CounterMetricFamily("hoshino_delivered_packets", "Packets written into the device at the pace "
                                   "they were sent, or at once.", labels=["pace"])
        for how in ("paced", "at_once"):
            pace.add_metric([how], data["pace"].get(how, 0))
        yield pace
        yield GaugeMetricFamily("hoshino_delivery_pace_packets_per_second", "The pace the latest paced object "
                                "was delivered at.", value=data["pace_rate"])
        yield GaugeMetricFamily("hoshino_delivery_backlog_objects", "Objects fetched and waiting for their turn "
                                "to be delivered.", value=data["delivery_backlog"])
        recent = GaugeMetricFamily("hoshino_recent_seconds", "Quantiles of the last 64 successful requests' "
                                   "times, by service and operation, and of objects' stages (service 'stage': "
                                   "queued, found, fetched, held).", labels=["service", "operation", "quantile"])
        for (service, operation), values in sorted(data["latency"].items()):
            ordered = sorted(values)  # out of the lock: copy() only copies
            for quantile in QUANTILES:
                recent.add_metric([service, operation, str(quantile)], quantile_of(ordered, quantile))
        yield recent
        if data["relay_outcomes"]:
            relay = CounterMetricFamily("hoshino_relay_connections", "An exit node's TCP connections from peers, "
                                        "relayed or not, by outcome.", labels=["outcome"])
            for outcome, count in sorted(data["relay_outcomes"].items()):
                relay.add_metric([outcome], count)
            yield relay
            yield GaugeMetricFamily("hoshino_relay_open_connections", "TCP connections the exit node relays now.",
                                    value=data["relay_connections"])
        requests = data["requests"]
        for stem, names, doc in (
            ("s3_read_operations", READ_OPERATIONS, "S3 read requests, by operation."),
            ("s3_write_operations", WRITE_OPERATIONS, "S3 write requests, by operation."),
        ):
            family = CounterMetricFamily(f"hoshino_{stem}", doc, labels=["operation"])
            for name in names:
                family.add_metric([name], requests.get(("s3", name), 0))
            yield family
        sqs = CounterMetricFamily("hoshino_sqs_requests", "SQS requests (the doorbell), by operation.",
                                  labels=["operation"])
        for (service, operation), count in sorted(requests.items()):
            if service == "sqs":
                sqs.add_metric([operation], count)
        yield sqs
        for service in ("s3", "sqs"):
            errors = CounterMetricFamily(f"hoshino_{service}_errors", f"Failed {service.upper()} requests, by "
                                         "operation and kind.", labels=["operation", "kind"])
            for (name, operation, kind), count in sorted(data["errors"].items()):
                if name == service:
                    errors.add_metric([operation, kind], count)
            yield errors
        for stem, doc in (("packets", "Packets"), ("bytes", "Bytes")):
            family = CounterMetricFamily(f"hoshino_route_{stem}", f"{doc} carried, by route (a prefix of the routing "
                                         "table) and direction (out: sent; in: delivered).",
                                         labels=["route", "direction"])
            for (route, direction), count in sorted(data[f"route_{stem}"].items()):
                family.add_metric([route, direction], count)
            yield family
        cost = CounterMetricFamily("hoshino_estimated_cost_dollars", "What the node's requests cost, estimated "
                                   "at its price table, by service and operation.", labels=["service", "operation"])
        for (service, operation), dollars in sorted(data["dollars"].items()):
            cost.add_metric([service, operation], dollars)
        yield cost
        yield GaugeMetricFamily(
            "hoshino_heartbeat_interval_seconds", "Seconds between inbox polls now.", value=self._heartbeat.interval
        )
        yield CounterMetricFamily(
            "hoshino_heartbeat_missed_beats", "Polls skipped because the receive pipeline was full.",
            value=self._heartbeat.missed,
        )
        offset = self._clock_offset() if self._clock_offset is not None else None
        if offset is not None:
            yield GaugeMetricFamily(
                "hoshino_clock_offset_seconds", "How far this node's clock is ahead of the bucket's (negative: "
                "behind), from the Date of S3's responses.", value=offset,
            )
        info = GaugeMetricFamily("hoshino_info", "The node's identity.", labels=[*self._info, "version"])
        info.add_metric([*self._info.values(), __version__], 1)
        yield info
        yield from self._collect_running()
        yield from _peer_families(data, self._peers() if self._peers is not None else ())

    def _collect_running(self) -> Iterator[Any]:
        if self._running is None:
            return
        running = self._running()
        state = GaugeMetricFamily("hoshino_state", "1 for the node's state now and what wakes it (sqs: a "
                                  "doorbell; poll: the heartbeat alone).", labels=["state", "wakeup"])
        state.add_metric([running.state, running.wakeup], 1)
        yield state
        yield GaugeMetricFamily("hoshino_start_time_seconds", "When the node started, in seconds since the epoch.",
                                value=running.started_at)


def _peer_families(data: dict[str, Any], listed: Iterable[PeerRoutes]) -> Iterator[Any]:
    """The per-peer families: the `peer` label is bounded by the peers file (agent.metrics.PeerLabels)."""
    info = GaugeMetricFamily("hoshino_peer_info", "1 for each peer the peers file lists: its name and the "
                             "routes it carries beyond its own addresses.", labels=["peer", "name", "routes"])
    for peer in listed:
        info.add_metric([peer.address.compressed, peer.name, " ".join(str(route) for route in peer.routes)], 1)
    yield info
    for stem, doc in (("packets", "Packets"), ("bytes", "Bytes")):
        family = CounterMetricFamily(f"hoshino_peer_{stem}", f"{doc} carried, by peer (its address, or "
                                     f"'{OTHER_PEER}') and direction (out: PUT for it; in: delivered from it).",
                                     labels=["peer", "direction"])
        for (peer, direction), count in sorted(data[f"peer_{stem}"].items()):
            family.add_metric([peer, direction], count)
        yield family
    requests = CounterMetricFamily("hoshino_peer_requests", "Requests an object to or from the peer took (its "
                                   "PUT and doorbell, its GET), by peer.", labels=["peer"])
    cost = CounterMetricFamily("hoshino_peer_estimated_cost_dollars", "What those requests cost, estimated at "
                               "the node's price table, by peer.", labels=["peer"])
    for peer, count in sorted(data["peer_requests"].items()):
        requests.add_metric([peer], count)
        cost.add_metric([peer], data["peer_dollars"].get(peer, 0.0))
    yield requests
    yield cost
    heard = GaugeMetricFamily("hoshino_peer_last_heard_timestamp_seconds", "When the newest object delivered "
                              "from the peer was sent (its key's time), in seconds since the epoch.", labels=["peer"])
    for peer, when in sorted(data["peer_heard"].items()):
        heard.add_metric([peer], when)
    yield heard


def node_registry(collector: Collector) -> CollectorRegistry:
    """A registry with the node's collector and the process, platform and GC metrics."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape is not news: stderr stays for what a person must read."""


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve the registry over HTTP from the calling thread's network namespace.

    As prometheus_client's start_http_server does, but its thread looks for shutdown() every
    SHUTDOWN_POLL seconds instead of every half second, which held up every stop of the node."""

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    server = make_server(host, port, make_wsgi_app(registry), Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                     name="hoshino-metrics", daemon=True).start()
    return server
