"""hoshino-agent status: this node and a line per peer, from the running agent's metrics page (agent.scrape).

Each peer's own page is tried through the tunnel, at once for all of them, to tell whether it answers.
Paces per day are the current ones: the page is read again PACE seconds after the first reading (the
peers are tried meanwhile); --pace 0 reads it once and gives the paces since the node started.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from agent.metrics import OTHER_PEER
from agent.scrape import (
    DEFAULT_PORT,
    TIMEOUT,
    Fetch,
    NodeReport,
    ScrapeError,
    fetch,
    metrics_url,
    node_pace,
    pace,
    peer_url,
    scrape,
)

PACE = 2.0
"""Seconds between the two readings of the page that give the current paces."""
DEFAULT_METRICS = "8081"
"""Where status looks for the agent by default: port 8081 on this machine's loopback (::1)."""
Probed = NodeReport | ScrapeError
"""A peer's page as it was read, or why it could not be."""


@dataclass(frozen=True)
class PeerLine:
    """One line of the status table: a peer as this node counts it, and whether its page answers."""

    peer: str
    """Its address, or 'other' for every peer outside the label's bound."""
    name: str
    routes: tuple[str, ...]
    last_heard: float | None
    bytes_out: int
    bytes_in: int
    packets_out: int
    packets_in: int
    requests_per_day: float
    dollars_per_day: float
    metrics: str
    """'answers', 'unreachable (why)', or '' when not asked (the 'other' line)."""


def probe_targets(report: NodeReport) -> list[str]:
    """The peers whose pages are worth asking: every one with an address, not this node itself."""
    return [peer for peer in report.peers if peer not in (OTHER_PEER, report.address)]


def probe_peers(report: NodeReport, port: int = DEFAULT_PORT, timeout: float = TIMEOUT, get: Fetch = fetch,
                clock: Callable[[], float] = time.time, targets: list[str] | None = None) -> dict[str, Probed]:
    """Each peer's page through the tunnel (targets: these only), all at once, so a silent one costs one
    timeout in all."""
    targets = probe_targets(report) if targets is None else targets
    if not targets:
        return {}

    def one(peer: str) -> Probed:
        try:
            return scrape(peer_url(peer, port), timeout, get, clock)
        except ScrapeError as error:
            return error

    with ThreadPoolExecutor(min(16, len(targets)), thread_name_prefix="hoshino-probe") as pool:
        return dict(zip(targets, pool.map(one, targets), strict=True))


def answer(probed: Probed | None) -> str:
    if probed is None:
        return ""
    return "answers" if isinstance(probed, NodeReport) else f"unreachable ({probed})"


def peer_lines(report: NodeReport, probed: Mapping[str, Probed], older: NodeReport | None = None) -> list[PeerLine]:
    """A line per peer the node lists or counts, named ones first; paces since older (else since start)."""
    lines = []
    for label in probe_targets(report) + ([OTHER_PEER] if OTHER_PEER in report.peers else []):
        figures = report.peers[label]
        rates = pace(report, label, older)
        lines.append(PeerLine(label, figures.name, figures.routes, figures.last_heard, figures.bytes_out,
                              figures.bytes_in, figures.packets_out, figures.packets_in, rates.requests,
                              rates.dollars, answer(probed.get(label))))
    return sorted(lines, key=lambda line: (line.peer == OTHER_PEER, not line.name, line.name, line.peer))


def pace_told(report: NodeReport, older: NodeReport | None) -> str:
    """Over what the paces per day were taken: 'the last 2.0 s', or 'since start'."""
    return f"the last {report.scraped_at - older.scraped_at:.1f} s" if older is not None else "since start"


def as_json(report: NodeReport, lines: list[PeerLine], older: NodeReport | None = None) -> str:
    rates = node_pace(report, older)
    node = {"address": report.address, "key_id": report.key_id, "state": report.state, "wakeup": report.wakeup,
            "heartbeat_seconds": report.heartbeat,
            "started_at": report.started_at, "uptime_seconds": round(report.uptime, 3), "metrics_url": report.url,
            "bytes_out": report.bytes_out, "bytes_in": report.bytes_in, "requests_per_day": rates.requests,
            "dollars_per_day": rates.dollars}
    peers = [{**asdict(line), "address": line.peer if line.peer != OTHER_PEER else None, "routes": list(line.routes)}
             for line in lines]
    return json.dumps({"node": node, "pace": pace_told(report, older), "time": report.scraped_at, "peers": peers},
                      indent=2)


def _size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _ago(when: float | None, now: float) -> str:
    if when is None:
        return "never"
    whole = max(0, int(now - when))
    for limit, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if whole >= limit:
            return f"{whole // limit}{unit} ago"
    return f"{whole}s ago"


def _money(value: float) -> str:
    return "$0" if value == 0 else f"${value:.2g}" if value < 1 else f"${value:,.2f}"


def _interval(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:g} s"


def as_table(report: NodeReport, lines: list[PeerLine], older: NodeReport | None = None) -> str:
    rates = node_pace(report, older)
    polls = f", every {_interval(report.heartbeat)} now" if report.heartbeat else ""
    wakes = {"sqs": "wakes on its doorbell (sqs)", "poll": f"wakes by polling{polls}"}.get(report.wakeup,
                                                                                        report.wakeup)
    head = (f"{report.address}  key {report.key_id or 'none (unsealed)'}  {report.state}, {wakes}  "
            f"up {_ago(report.started_at, report.scraped_at).removesuffix(' ago')}  "
            f"{_money(rates.dollars)}/day at the pace of {pace_told(report, older)}")
    rows = [("NAME", "ADDRESS", "ROUTES", "HEARD", "SENT", "RECEIVED", "REQ/DAY", "$/DAY", "METRICS")]
    for line in lines:
        rows.append((line.name or "-", line.peer, ",".join(line.routes) or "-",
                     _ago(line.last_heard, report.scraped_at), _size(line.bytes_out), _size(line.bytes_in),
                     f"{line.requests_per_day:,.0f}",
                     _money(line.dollars_per_day), line.metrics or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if len(rows) == 1:
        table.append("(no peers yet: none in the peers file, and none heard from)")
    return "\n".join([head, *table])


def run(where: str, as_json_output: bool = False, timeout: float = TIMEOUT, pace_seconds: float = PACE) -> int:
    """Print the status of the agent whose page is at `where` (--metrics); return the exit status."""
    try:
        url = metrics_url(where)
        if not timeout > 0:
            raise ValueError(f"--timeout {timeout:g}: give a number of seconds above 0")
        if not 0 <= pace_seconds <= 60:
            raise ValueError(f"--pace {pace_seconds:g}: give seconds from 0 (since start) to 60")
    except ValueError as error:
        print(f"hoshino-agent status: error: {error}", file=sys.stderr)
        return 2
    try:
        report = scrape(url, timeout)
    except ScrapeError as error:
        print(f"hoshino-agent status: error: no agent answers at {url} ({error}): is it running? "
              f"Pass --metrics with the port or URL of its --metrics-listen", file=sys.stderr)
        return 1
    first_read = time.monotonic()
    probed = probe_peers(report, urlparse(url).port or DEFAULT_PORT, timeout)
    older: NodeReport | None = None
    if pace_seconds:
        time.sleep(max(0.0, first_read + pace_seconds - time.monotonic()))
        with contextlib.suppress(ScrapeError):  # gone between the readings: the paces since start, from the first
            report, older = scrape(url, timeout), report
    lines = peer_lines(report, probed, older)
    print(as_json(report, lines, older) if as_json_output else as_table(report, lines, older))
    return 0
