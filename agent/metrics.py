"""The node's counters, and their Prometheus exposition (hoshino_*_total, labels for reasons)."""

from __future__ import annotations

import statistics
import threading
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from agent import __version__
from agent.heartbeat import Heartbeat

READ_OPERATIONS = ("get", "list", "head")
WRITE_OPERATIONS = ("put", "delete")


class Stats:
    """Thread-safe counters of one node; cheap to bump, cheap to copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.packets_out = 0
        self.bytes_out = 0
        self.packets_in = 0
        self.bytes_in = 0
        self.s3_ops: Counter[str] = Counter()
        self.s3_errors: Counter[tuple[str, str]] = Counter()
        self.dropped: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self._latency: dict[str, deque[float]] = {}

    def egressed(self, packets: int, size: int) -> None:
        with self._lock:
            self.packets_out += packets
            self.bytes_out += size

    def ingressed(self, packets: int, size: int) -> None:
        with self._lock:
            self.packets_in += packets
            self.bytes_in += size

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def ignore(self, reason: str) -> None:
        with self._lock:
            self.ignored[reason] += 1

    def s3_request(self, operation: str, seconds: float, error_kind: str = "") -> None:
        """Count one S3 request, its latency, and its failure if it failed."""
        with self._lock:
            self.s3_ops[operation] += 1
            if error_kind:
                self.s3_errors[(operation, error_kind)] += 1
            else:
                self._latency.setdefault(operation, deque(maxlen=64)).append(seconds)

    def latency_medians(self) -> dict[str, float]:
        """Median of the recent successful requests' latency, by operation."""
        with self._lock:
            samples = {op: list(values) for op, values in self._latency.items() if values}
        return {op: statistics.median(values) for op, values in samples.items()}

    def copy(self) -> dict[str, Any]:
        """A consistent copy of every counter."""
        with self._lock:
            return {
                "packets_out": self.packets_out,
                "bytes_out": self.bytes_out,
                "packets_in": self.packets_in,
                "bytes_in": self.bytes_in,
                "s3_ops": dict(self.s3_ops),
                "s3_errors": dict(self.s3_errors),
                "dropped": dict(self.dropped),
                "ignored": dict(self.ignored),
            }


class NodeCollector(Collector):
    """Exposes a node's Stats and heartbeat in Prometheus conventions."""

    def __init__(self, stats: Stats, heartbeat: Heartbeat, info: dict[str, str]) -> None:
        self._stats = stats
        self._heartbeat = heartbeat
        self._info = info

    def collect(self) -> Iterator[Any]:
        data = self._stats.copy()
        for stem, value, doc in (
            ("packets_egressed", data["packets_out"], "IPv6 packets put into the bucket."),
            ("bytes_egressed", data["bytes_out"], "Bytes of IPv6 packets put into the bucket."),
            ("packets_ingressed", data["packets_in"], "IPv6 packets taken from the bucket and delivered."),
            ("bytes_ingressed", data["bytes_in"], "Bytes of IPv6 packets delivered from the bucket."),
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
        ops = data["s3_ops"]
        for stem, names, doc in (
            ("s3_read_operations", READ_OPERATIONS, "S3 read requests, by operation."),
            ("s3_write_operations", WRITE_OPERATIONS, "S3 write requests, by operation."),
        ):
            family = CounterMetricFamily(f"hoshino_{stem}", doc, labels=["operation"])
            for name in names:
                family.add_metric([name], ops.get(name, 0))
            yield family
        errors = CounterMetricFamily(
            "hoshino_s3_errors", "Failed S3 requests, by operation and kind.", labels=["operation", "kind"]
        )
        for (operation, kind), count in sorted(data["s3_errors"].items()):
            errors.add_metric([operation, kind], count)
        yield errors
        yield GaugeMetricFamily(
            "hoshino_heartbeat_interval_seconds", "Seconds between inbox polls now.", value=self._heartbeat.interval
        )
        yield CounterMetricFamily(
            "hoshino_heartbeat_missed_beats", "Polls that outlasted the interval, so the rate backed off.",
            value=self._heartbeat.missed,
        )
        info = GaugeMetricFamily("hoshino_info", "The node's identity.", labels=[*self._info, "version"])
        info.add_metric([*self._info.values(), __version__], 1)
        yield info


def node_registry(collector: Collector) -> CollectorRegistry:
    """A registry with the node's collector and the process, platform and GC metrics."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve the registry over HTTP from the calling thread's network namespace."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
