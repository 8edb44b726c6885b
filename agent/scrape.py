"""Read a node's metrics page (this node's, or a peer's through the tunnel) into a NodeReport.

`hoshino-agent status` and the dashboard's network screen both read nodes this way: the running agent
already serves the page, any local user can read it without root, and a peer's page has the same
form, reached at its tunnel address, so one parser serves every node a member can see.
"""

from __future__ import annotations

import http.client
import ipaddress
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import OTHER_PEER

DEFAULT_PORT = 8081
TIMEOUT = 2.0
"""Seconds a page may take to answer: a peer's comes through the bucket, a round trip of polls."""
PAGE_LIMIT = 4 << 20
"""A page larger than this is refused: a node with every peer labelled writes some hundreds of kB."""
DAY = 86400.0

Fetch = Callable[[str, float], str]
"""Read the page at a URL within a timeout; ScrapeError says why not."""


class ScrapeError(Exception):
    """A page that could not be read or is not a node's metrics page; the message is short, for a table."""


@dataclass(frozen=True)
class PeerFigures:
    """What one node counts of one peer (its address, or OTHER_PEER for the ones outside the bound)."""

    peer: str
    name: str = ""
    routes: tuple[str, ...] = ()
    listed: bool = False
    """In the node's peers file."""
    packets_out: int = 0
    packets_in: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    dollars: float = 0.0
    last_heard: float | None = None
    """When the newest object from it was sent, in seconds since the epoch; None: never."""


@dataclass(frozen=True)
class NodeReport:
    """One node's page, read at scraped_at: who it is, how it runs, and its figures per peer."""

    url: str
    scraped_at: float
    address: str = ""
    key_id: str = ""
    state: str = ""
    wakeup: str = ""
    started_at: float = 0.0
    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    """Every request the node made, to S3 and SQS, whatever it was for."""
    dollars: float = 0.0
    heartbeat: float = 0.0
    """Seconds between inbox polls at the time of reading (0: the page does not say)."""
    peers: dict[str, PeerFigures] = field(default_factory=dict)

    @property
    def uptime(self) -> float:
        return max(0.0, self.scraped_at - self.started_at) if self.started_at else 0.0


def metrics_url(where: str) -> str:
    """The page URL for --metrics: a port (this machine's loopback), HOST:PORT, [IPV6]:PORT, or a URL."""
    where = where.strip()
    if "://" in where:
        return where
    if where.isdigit():
        return f"http://[::1]:{where}/metrics"
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.startswith("[")):
        raise ValueError(f"--metrics {where!r}: give a port (8081), HOST:PORT, [IPV6]:PORT or a URL")
    return f"http://{host}:{port}/metrics"


def peer_url(address: str, port: int = DEFAULT_PORT) -> str:
    """A peer's page through the tunnel, at its tunnel address."""
    return f"http://[{ipaddress.IPv6Address(address).compressed}]:{port}/metrics"


def fetch(url: str, timeout: float = TIMEOUT) -> str:
    """GET the page, at most PAGE_LIMIT bytes of it; ScrapeError with the reason in a few words."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(PAGE_LIMIT + 1)
    except urllib.error.HTTPError as error:
        raise ScrapeError(f"HTTP {error.code}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise ScrapeError("timed out") from None
        if isinstance(reason, ConnectionRefusedError):
            raise ScrapeError("refused") from None
        raise ScrapeError(getattr(reason, "strerror", None) or str(reason)) from None
    except TimeoutError:
        raise ScrapeError("timed out") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ScrapeError(getattr(error, "strerror", None) or str(error) or type(error).__name__) from None
    if len(body) > PAGE_LIMIT:
        raise ScrapeError(f"page larger than {PAGE_LIMIT >> 20} MiB")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ScrapeError("not UTF-8 text") from None


def parse(text: str, url: str = "", scraped_at: float = 0.0) -> NodeReport:
    """The report of one page; ScrapeError when it is not a Hoshino node's page."""
    values: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("hoshino_"):
                continue
            for sample in family.samples:
                values.setdefault(sample.name, []).append((sample.labels, sample.value))
    except (ValueError, TypeError, IndexError) as error:
        raise ScrapeError(f"not a metrics page ({error})") from None
    if "hoshino_info" not in values:
        raise ScrapeError("not a Hoshino node's metrics page")

    def total(name: str, **match: str) -> float:
        return sum(value for labels, value in values.get(name, ())
                   if all(labels.get(key) == wanted for key, wanted in match.items()))

    info = values["hoshino_info"][0][0]
    state = values.get("hoshino_state", [({}, 0.0)])[0][0]
    peers: dict[str, dict[str, object]] = {}
    for labels, _ in values.get("hoshino_peer_info", ()):
        peers[labels.get("peer", "")] = {"name": labels.get("name", ""), "listed": True,
                                          "routes": tuple(labels.get("routes", "").split())}
    for stem in ("packets", "bytes"):
        for labels, value in values.get(f"hoshino_peer_{stem}_total", ()):
            peer = peers.setdefault(labels.get("peer", OTHER_PEER), {})
            peer[f"{stem}_{labels.get('direction', 'out')}"] = int(value)
    for name, key, kind in (("hoshino_peer_requests_total", "requests", int),
                            ("hoshino_peer_estimated_cost_dollars_total", "dollars", float),
                            ("hoshino_peer_last_heard_timestamp_seconds", "last_heard", float)):
        for labels, value in values.get(name, ()):
            peers.setdefault(labels.get("peer", OTHER_PEER), {})[key] = kind(value)
    requests = sum(total(name) for name in ("hoshino_s3_read_operations_total", "hoshino_s3_write_operations_total",
                                            "hoshino_sqs_requests_total"))
    return NodeReport(
        url=url, scraped_at=scraped_at, address=info.get("address", ""), key_id=info.get("key_id", ""),
        state=state.get("state", ""), wakeup=state.get("wakeup", ""),
        started_at=total("hoshino_start_time_seconds"),
        bytes_out=int(total("hoshino_bytes_egressed_total")), bytes_in=int(total("hoshino_bytes_ingressed_total")),
        requests=int(requests), dollars=total("hoshino_estimated_cost_dollars_total"),
        heartbeat=total("hoshino_heartbeat_interval_seconds"),
        peers={peer: PeerFigures(peer, **figures) for peer, figures in sorted(peers.items())},  # type: ignore[arg-type]
    )


def scrape(url: str, timeout: float = TIMEOUT, get: Fetch = fetch,
           clock: Callable[[], float] = time.time) -> NodeReport:
    """Read and parse the page at url; ScrapeError says why not."""
    text = get(url, timeout)
    return parse(text, url, clock())


def per_day(amount: float, seconds: float) -> float:
    """An amount counted over so many seconds, at that pace for a day; 0 over no time."""
    return amount * DAY / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class Pace:
    """A peer's figures per day, from two reports of one node (or one report and the node's start)."""

    requests: float
    dollars: float
    bytes: float


def pace(newer: NodeReport, peer: str, older: NodeReport | None = None) -> Pace:
    """The peer's pace between two reports of its node; without an older one, since the node started."""
    older = _same_run(newer, older)
    now = newer.peers.get(peer, PeerFigures(peer))
    then = older.peers.get(peer, PeerFigures(peer)) if older is not None else PeerFigures(peer)
    seconds = newer.scraped_at - older.scraped_at if older is not None else newer.uptime
    return Pace(per_day(now.requests - then.requests, seconds), per_day(now.dollars - then.dollars, seconds),
                per_day(now.bytes_out + now.bytes_in - then.bytes_out - then.bytes_in, seconds))


def node_pace(newer: NodeReport, older: NodeReport | None = None) -> Pace:
    """The whole node's pace, every request and byte it moved, as pace() does for one peer."""
    older = _same_run(newer, older)
    seconds = newer.scraped_at - older.scraped_at if older is not None else newer.uptime
    base = older if older is not None else NodeReport("", 0.0)
    return Pace(per_day(newer.requests - base.requests, seconds), per_day(newer.dollars - base.dollars, seconds),
                per_day(newer.bytes_out + newer.bytes_in - base.bytes_out - base.bytes_in, seconds))


def _same_run(newer: NodeReport, older: NodeReport | None) -> NodeReport | None:
    """older if it was read since the node last started (a restart begins its counters at zero again)."""
    if older is None or older.started_at != newer.started_at or older.scraped_at >= newer.scraped_at:
        return None
    return older
