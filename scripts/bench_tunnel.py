"""What the tunnel costs in time and money, for variants of the agent side by side in one run.

Run as root on the lab: `.venv/bin/python scripts/bench_tunnel.py` (or `make bench`); `--quick` for a
smoke run; `--baseline REF` adds agents from another commit, `--variant NAME=ARGS` agents with extra
flags; `--s3 seaweedfs` runs the lab on SeaweedFS. Scenarios take turns between the variants, one pair
of agents at a time, so the machine's noise falls on all of them alike: compare variants within a run,
not across runs. Prints a table (each S3 client's CPU per request, the server's, the targets' ratios),
writes JSON with --json; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import json
import os
import queue
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agent.lab import S3_ENGINES, Lab, LabError, run_in, stop_process, wait_until
from agent.lab.nodes import ROLES
from agent.lab.traffic import fetch_metrics
from agent.metrics import STAGES
from agent.netconf import inside
from agent.prices import DEFAULT_PRESET, GB, PriceError, PriceTable, load_prices
from agent.sealing import encode_public_key, generate_key_file
from agent.transport import S3_CLIENTS, GuardedBucket, open_bucket

REPO = Path(__file__).resolve().parents[1]
DAY = 86_400
MB = 1e6
BILLABLE = {
    "hoshino_s3_read_operations_total": "s3",
    "hoshino_s3_write_operations_total": "s3",
    "hoshino_sqs_requests_total": "sqs",
}
MOVED = ("hoshino_bytes_egressed_total", "hoshino_bytes_ingressed_total", "hoshino_dropped_packets_total")
PING_REPLY = re.compile(r"icmp_seq=(\d+) .*time=([0-9.]+) ms(?! \(DUP)")
PING_TOTALS = re.compile(r"(\d+) packets transmitted, (\d+) received")
IPERF_PORT = 5201
IDLE_SETTLE = 65.0
"""Seconds between the last traffic and the start of an idle measurement."""
ENDPOINT_OPERATIONS = ("put", "get", "list", "delete")


# ---- figures from samples and from /proc ---------------------------------------------------------------------

def percentile(samples: list[float], fraction: float) -> float:
    """The fraction-quantile of samples (linear between ranks, as numpy's default)."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(samples: list[float]) -> dict[str, Any]:
    """Median, p99 and count of samples (milliseconds in, milliseconds out)."""
    if not samples:
        return {"n": 0}
    return {"p50": statistics.median(samples), "p99": percentile(samples, 0.99), "n": len(samples)}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU, summed over a process's threads (/proc's schedstat: finer than stat's ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples the resident memory of some processes in a thread, keeping each one's peak."""

    def __init__(self, pids: Mapping[str, int], period: float = 0.25) -> None:
        self.pids = pids
        self.period = period
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for role, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.peak[role] = max(self.peak[role], rss_mib(pid))
            if self._stop.wait(self.period):
                return


class Busy:
    """CPU seconds that groups of processes used over a stretch of wall time (a process gone counts 0)."""

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self.groups = groups
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def _now(self) -> dict[str, float]:
        return {name: sum(_cpu_or_zero(pid) for pid in pids) for name, pids in self.groups.items()}

    def __enter__(self) -> Busy:
        self._start, self._wall = self._now(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.wall = time.monotonic() - self._wall
        self.seconds = {name: end[name] - self._start[name] for name in self.groups}


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def busy_groups(lab: Lab, agents: Mapping[str, subprocess.Popen[bytes]]) -> dict[str, list[int]]:
    """The agents, the S3 server and the SQS server, whose CPU time says where a scenario's time went."""
    server = [lab.server.process.pid] if lab.server.process else []
    sqs = [lab.sqs.process.pid] if lab.sqs.process else []
    return {"agents": [process.pid for process in agents.values()], "server": server, "sqs": sqs}


def add_busy(total: dict[str, float], busy: Busy) -> None:
    for name, seconds in busy.seconds.items():
        total[name] = total.get(name, 0.0) + seconds
    total["wall"] = total.get("wall", 0.0) + busy.wall


@dataclass
class Counters:
    """What a node's metrics page says it has done: billable requests by (service, operation), bytes moved."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    moved: Counter[str] = field(default_factory=Counter)

    def __sub__(self, other: Counters) -> Counters:
        return Counters(Counter(self.requests) - other.requests, Counter(self.moved) - other.moved)

    def __add__(self, other: Counters) -> Counters:
        return Counters(self.requests + other.requests, self.moved + other.moved)


def node_counters(lab: Lab, role: str) -> Counters:
    """One node's counters, read from its own metrics page inside its namespace."""
    with inside(lab.namespaces[role].name):
        page = fetch_metrics(lab.address(role))
    counters = Counters()
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name in BILLABLE:
                counters.requests[(BILLABLE[sample.name], sample.labels.get("operation", "?"))] += int(sample.value)
            elif sample.name in MOVED:
                counters.moved[sample.name] += int(sample.value)
    return counters


def both_nodes(lab: Lab) -> Counters:
    return node_counters(lab, "local") + node_counters(lab, "peer")


def node_medians(lab: Lab, role: str) -> dict[str, float]:
    """One node's medians (ms) of its recent objects' stages and requests (agent.metrics.STAGES), from its
    metrics page; empty for an agent that predates them."""
    with inside(lab.namespaces[role].name):
        page = fetch_metrics(lab.address(role))
    return {f"{sample.labels['service']}_{sample.labels['operation']}": 1000 * sample.value
            for family in text_string_to_metric_families(page) if family.name == "hoshino_recent_seconds"
            for sample in family.samples if sample.labels.get("quantile") == "0.5"}


def dollars(prices: PriceTable, counters: Counters) -> tuple[float, list[str]]:
    """What the requests cost, S3 payloads included; and the operations the table cannot price."""
    payload = {("s3", "put"): counters.moved["hoshino_bytes_egressed_total"],
               ("s3", "get"): counters.moved["hoshino_bytes_ingressed_total"]}
    total, unpriced = 0.0, []
    for (service, operation), count in counters.requests.items():
        try:
            total += prices.requests(service, operation, count, payload.get((service, operation), 0))
        except PriceError:
            unpriced.append(f"{service}:{operation}")
    return total, unpriced


# ---- the variants -----------------------------------------------------------------------------------------

@dataclass
class Variant:
    """One way to run the agents: whose code (None: this checkout), and what each role's agent is given.

    prepare() is the hook for a variant that needs files made before its agents start (key files per
    node, say): override it, write into workdir, and return the flags that name them.
    """

    name: str
    code: Path | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    describe: str = ""
    failed: str = ""
    _workdir: Path | None = field(default=None, init=False, repr=False)

    @property
    def workdir(self) -> Path:
        """A directory of this variant's own for files its agents need, removed by close()."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"hoshino-bench-{self.name}-"))
        return self._workdir

    def prepare(self, lab: Lab, role: str) -> list[str]:
        """Extra flags for this role's agent: this checkout's agents learn where the lab's SQS is."""
        return list(self.args) + ([] if self.code else ["--sqs-endpoint-url", lab.sqs.endpoint_url])

    def start(self, lab: Lab) -> dict[str, subprocess.Popen[bytes]]:
        """Both agents, up and serving their metrics; raises LabError (after stopping any started) if not."""
        agents: dict[str, subprocess.Popen[bytes]] = {}
        flags = {role: self.prepare(lab, role) for role in ROLES}
        # A polling variant starts from no doorbell queues (one left would be rung in vain); a doorbell
        # variant from its nodes' queues, made beforehand as a deployment's Terraform makes them.
        sqs = lab.sqs.sqs_client()
        for url in sqs.list_queues().get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=url)
        if any(pair == ("--wakeup", "sqs") for pair in itertools.pairwise(flags["local"])):
            lab.provision_queues()
        try:
            for role in ROLES:
                agents[role] = lab.spawn_agent(role, *flags[role], code=self.code, env=self.env)
            for role, process in agents.items():
                wait_until(functools.partial(_serving_or_gone, lab, role, process), timeout=15, step=0.1)
                if process.poll() is not None or not _serving(lab, role):
                    raise LabError(f"agent {role} serves no metrics page: {lab.agent_log(process)[-1000:]}")
        except BaseException:
            stop(agents)
            raise
        return agents

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


def _serving(lab: Lab, role: str) -> bool:
    try:
        node_counters(lab, role)
    except OSError:
        return False
    return True


def _serving_or_gone(lab: Lab, role: str, process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None or _serving(lab, role)


def stop(agents: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for process in agents.values():
        stop_process(process)


class SealedVariant(Variant):
    """This checkout with sealing on: a key pair per node and peers files naming each other, made once."""

    def prepare(self, lab: Lab, role: str) -> list[str]:
        directory = self.workdir
        if not (directory / "local.toml").exists():
            public = {name: encode_public_key(generate_key_file(directory / f"{name}.key")) for name in ROLES}
            for name in ROLES:
                others = [f'"{lab.address(other)}" = "{public[other]}"' for other in ROLES if other != name]
                (directory / f"{name}.toml").write_text("[peers]\n" + "\n".join(others) + "\n")
        return [*super().prepare(lab, role),
                "--key-file", str(directory / f"{role}.key"), "--peers", str(directory / f"{role}.toml")]


def parse_variant(text: str, sealed: bool = False) -> Variant:
    name, sep, args = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise argparse.ArgumentTypeError(f"not NAME=ARGS: {text!r} (e.g. sqs='--wakeup sqs')")
    kind = SealedVariant if sealed else Variant
    return kind(name, args=tuple(shlex.split(args)), describe=f"this checkout, {args}{', sealed' if sealed else ''}")


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[tuple[Path, str]]:
    """A detached git worktree of ref in a temporary directory, removed afterwards; yields (path, commit)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=False)
    if commit.returncode != 0:
        raise SystemExit(f"--baseline {ref}: not a commit here: {commit.stderr.strip()}")
    parent = Path(tempfile.mkdtemp(prefix="hoshino-baseline-"))
    directory = parent / "checkout"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(directory), ref],
                   check=True)
    try:
        yield directory, commit.stdout.strip()
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(directory)], check=False)
        shutil.rmtree(parent, ignore_errors=True)


# ---- the endpoint alone -----------------------------------------------------------------------------------

@dataclass
class Timing:
    """Per request: wall milliseconds, and the milliseconds of CPU the client and the server spent on it."""

    wall: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)


def endpoint(store: GuardedBucket, count: int, server_pid: int | None) -> dict[str, Timing]:
    """PUT, GET, LIST (a prefix holding that one object) and DELETE of 100-byte objects, each timed."""
    body = os.urandom(100)
    times = {operation: Timing() for operation in ENDPOINT_OPERATIONS}
    for index in range(count):
        key = f"bench-endpoint/{index:06d}"
        _timed(times["put"], server_pid, store.put, key, body)
        _timed(times["get"], server_pid, store.get, key)
        _timed(times["list"], server_pid, store.list_objects, "bench-endpoint/")
        _timed(times["delete"], server_pid, store.delete, [key])
    return times


def _timed(timing: Timing, server_pid: int | None, request: Callable[..., object], *args: object) -> None:
    """One request: the client's CPU is this whole process's (obstore works on threads of its own), which
    does nothing else meanwhile; the server's is read around it, outside the client's window."""
    server = cpu_ns(server_pid) if server_pid else 0
    cpu, started = time.process_time(), time.perf_counter()
    request(*args)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if server_pid:
        timing.server_cpu.append((cpu_ns(server_pid) - server) / 1e6)
    timing.wall.append(wall * 1000)
    timing.client_cpu.append(cpu * 1000)


def raw_pipeline(store: GuardedBucket, seconds: float, size: int = 256 * 1024) -> float:
    """MB/s of one thread PUTting objects as fast as it can while another LISTs and GETs them in order.

    Deletes run in a third thread, off the path; what the tunnel does, with nothing but S3 requests.
    """
    prefix = "bench-raw/"
    body = os.urandom(size)
    written = [0]
    writing_done = threading.Event()
    deletions: queue.Queue[str | None] = queue.Queue()
    started = time.monotonic()

    def write() -> None:
        try:
            while time.monotonic() - started < seconds:
                store.put(f"{prefix}{written[0]:08d}", body)
                written[0] += 1
        finally:
            writing_done.set()

    def delete() -> None:
        finished = False
        while not finished:
            batch: list[str] = []
            key = deletions.get()
            while True:
                if key is None:
                    finished = True
                    break
                batch.append(key)
                if len(batch) == 1000:
                    break
                try:
                    key = deletions.get_nowait()
                except queue.Empty:
                    break
            if batch:
                store.delete(batch)

    threads = [threading.Thread(target=write, name="raw-writer"), threading.Thread(target=delete, name="raw-deleter")]
    for thread in threads:
        thread.start()
    seen: set[str] = set()
    read, last = 0, started
    try:
        while time.monotonic() - started < seconds + 30:
            if writing_done.is_set() and len(seen) >= written[0]:
                break
            fresh = sorted(item.key for item in store.list_objects(prefix, max_keys=1000) if item.key not in seen)
            for key in fresh:
                data = store.get(key)
                read += len(data or b"")
                seen.add(key)
                deletions.put(key)
            if fresh:
                last = time.monotonic()
    finally:
        writing_done.wait()
        deletions.put(None)
        for thread in threads:
            thread.join()
    return read / max(last - started, 1e-9) / MB


def empty_bucket(store: GuardedBucket) -> None:
    """Delete every object, so what one variant left behind does not slow the next one's LISTs."""
    while keys := [item.key for item in store.list_objects("", max_keys=1000)]:
        store.delete(keys)


# ---- traffic through the tunnel ---------------------------------------------------------------------------

def ping(lab: Lab, interval: float, count: int) -> dict[str, Any]:
    """Per-packet round trips (ms) of ping -6 from the local node's namespace to the peer."""
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", str(count), "-i", f"{interval:g}",
                    "-W", "5", str(lab.peer_address), timeout=count * interval + 60)
    rtts = [float(ms) for _seq, ms in PING_REPLY.findall(result.stdout)]
    totals = PING_TOTALS.search(result.stdout)
    sent = int(totals.group(1)) if totals else count
    return {"rtts": rtts, "sent": sent, "received": int(totals.group(2)) if totals else len(rtts)}


@contextlib.contextmanager
def iperf_server(lab: Lab, port: int) -> Iterator[None]:
    """iperf3 -s for one test, listening on the peer's address inside its namespace (for a UDP test too:
    its control connection is TCP, and its UDP socket keeps the default receive buffer)."""
    namespace = lab.namespaces["peer"].name
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace, "iperf3", "-s", "-1", "-B", str(lab.peer_address), "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        listening = wait_until(lambda: run_in(namespace, "ss", "-ltnH", f"sport = :{port}").stdout.strip(), 10)
        if not listening:
            raise RuntimeError("iperf3 server did not listen within 10 s")
        yield
    finally:
        stop_process(process)


def iperf(
    lab: Lab, agents: Mapping[str, subprocess.Popen[bytes]], seconds: float, congestion: str | None = None
) -> dict[str, Any]:
    """iperf3 -6 from the local namespace to the peer's, with the requests, CPU and memory it took."""
    pids = {role: process.pid for role, process in agents.items()}
    with iperf_server(lab, IPERF_PORT):
        before = both_nodes(lab)
        cpu_before = sum(cpu_seconds(pid) for pid in pids.values())
        with PeakRss(pids) as memory, Busy(busy_groups(lab, agents)) as busy:
            result = run_in(lab.namespaces["local"].name, "iperf3", "-6", "-J", "-c", str(lab.peer_address),
                            "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "--connect-timeout", "10000",
                            *(["-C", congestion] if congestion else []), timeout=seconds + 90)
        cpu = sum(cpu_seconds(pid) for pid in pids.values()) - cpu_before
        counters = both_nodes(lab) - before
    report = iperf_report(result, "iperf3")
    received = report["end"]["sum_received"]
    sender = (report["end"].get("streams") or [{}])[0].get("sender", {})
    return {
        "congestion": report.get("start", {}).get("tcp_congestion") or report["end"].get("sender_tcp_congestion"),
        # TCP's own view of the path: a window held in flight for a round trip is the throughput.
        "tcp_mean_rtt_ms": sender["mean_rtt"] / 1000 if "mean_rtt" in sender else None,
        "tcp_max_cwnd_kib": sender["max_snd_cwnd"] / 1024 if "max_snd_cwnd" in sender else None,
        "mb_s": received["bytes"] / received["seconds"] / MB,
        "bytes": received["bytes"],
        "seconds": received["seconds"],
        "retransmits": report["end"].get("sum_sent", {}).get("retransmits"),
        "requests": {f"{service}:{operation}": count for (service, operation), count in counters.requests.items()},
        "moved": dict(counters.moved),
        "cpu_seconds": cpu,
        "rss_peak_mib": memory.peak,
        "busy": busy,
        "counters": counters,
    }


def iperf_report(result: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """iperf3's JSON report; RuntimeError when it printed none or reports an error."""
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{what} printed no JSON: {result.stderr.strip()[-300:]}") from None
    if "error" in report:
        raise RuntimeError(f"{what}: {report['error']}")
    return report


def udp_receive_errors(lab: Lab) -> int:
    """The peer's kernel's count of UDP datagrams dropped for want of room in a socket's receive buffer."""
    snmp = run_in(lab.namespaces["peer"].name, "cat", "/proc/net/snmp6").stdout
    return sum(int(line.split()[1]) for line in snmp.splitlines() if line.startswith("Udp6RcvbufErrors"))


def iperf_udp(lab: Lab, mbit_s: float, seconds: float) -> dict[str, Any]:
    """iperf3 -u at a given rate, 1,400-byte datagrams, default socket buffers: what the application lost."""
    with iperf_server(lab, IPERF_PORT):
        errors_before = udp_receive_errors(lab)
        result = run_in(lab.namespaces["local"].name, "iperf3", "-6", "-J", "-u", "-b", f"{mbit_s:g}M",
                        "-l", "1400", "-c", str(lab.peer_address), "-p", str(IPERF_PORT), "-t", f"{seconds:g}",
                        "--connect-timeout", "10000", timeout=seconds + 90)
        errors = udp_receive_errors(lab) - errors_before
    report = iperf_report(result, "iperf3 -u")
    total = report["end"]["sum"]
    return {"offered_mbit_s": mbit_s, "lost_percent": total.get("lost_percent"),
            "jitter_ms": total.get("jitter_ms"), "packets": total.get("packets"),
            "lost_packets": total.get("lost_packets"), "rcvbuf_errors": errors}


def ping_after_outage(lab: Lab, seconds: float) -> float | None:
    """Stop the S3 server for a while, start it again; seconds until a ping gets through (None: not in 60 s)."""
    lab.server.stop()
    time.sleep(seconds)
    lab.server.start()
    lab.server.create_bucket(lab.bucket)
    back = time.monotonic()
    while time.monotonic() - back < 60:
        result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "1", "-W", "2",
                        str(lab.peer_address), timeout=10)
        if result.returncode == 0:
            return time.monotonic() - back
    return None


# ---- the run ----------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """How much of each scenario one round runs."""

    rounds: int
    endpoint_requests: int
    raw_seconds: float
    pings: dict[str, tuple[float, int]]
    iperf_seconds: float
    idle_seconds: float
    outage_seconds: float
    scenarios: list[str]
    congestion: str | None
    udp_rates: tuple[float, ...] = (8.0, 20.0, 40.0)
    """Offered rates of the UDP scenario, in Mbit/s."""
    udp_seconds: float = 8.0


@dataclass
class Results:
    """Everything measured in one run, kept raw; report() turns it into figures."""

    endpoint: dict[str, dict[str, Timing]] = field(default_factory=dict)
    """S3 client -> operation -> timings."""
    raw_mb_s: list[float] = field(default_factory=list)
    pings: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    iperf: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idle: dict[str, list[tuple[float, Counters]]] = field(default_factory=dict)
    outage: dict[str, list[float | None]] = field(default_factory=dict)
    udp: dict[str, dict[float, list[dict[str, Any]]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


class Bench:
    """Runs the plan's scenarios round by round, each scenario taking turns between the variants."""

    def __init__(self, lab: Lab, variants: list[Variant], plan: Plan) -> None:
        self.lab = lab
        self.variants = variants
        self.plan = plan
        self.stores = {name: open_bucket(lab.bucket, lab.server.endpoint_url, "us-east-1", s3_client=name)
                       for name in S3_CLIENTS}
        # The raw pipeline (and emptying the bucket) on the leanest client: the endpoint's pace, not a client's.
        self.store = self.stores["obstore"]
        self.results = Results()

    def run(self) -> Results:
        for number in range(self.plan.rounds):
            say(f"round {number + 1} of {self.plan.rounds}")
            if "endpoint" in self.plan.scenarios:
                server = self.lab.server.process.pid if self.lab.server.process else None
                for client, store in self.stores.items():
                    mine = self.results.endpoint.setdefault(client, {op: Timing() for op in ENDPOINT_OPERATIONS})
                    for operation, timing in endpoint(store, self.plan.endpoint_requests, server).items():
                        mine[operation].wall += timing.wall
                        mine[operation].client_cpu += timing.client_cpu
                        mine[operation].server_cpu += timing.server_cpu
            for scenario in self.plan.scenarios:
                if scenario in ("endpoint", "outage"):
                    continue
                self._take_turns(number, scenario)
        if "outage" in self.plan.scenarios and self.plan.outage_seconds > 0:
            self._take_turns(0, "outage")
        return self.results

    def _take_turns(self, number: int, scenario: str) -> None:
        live = [variant for variant in self.variants if not variant.failed]
        if not live:
            return
        shift = number % len(live)
        for variant in live[shift:] + live[:shift]:
            say(f"  {scenario}: {variant.name}")
            raw = None
            if scenario == "iperf":
                # Right before each iperf3 run, so each has a raw figure taken under the same load.
                raw = raw_pipeline(self.store, self.plan.raw_seconds)
                self.results.raw_mb_s.append(raw)
                empty_bucket(self.store)
            try:
                agents = variant.start(self.lab)
            except Exception as error:  # LabError, or a prepare() hook that failed
                variant.failed = f"its agents did not start: {error}"
                say(f"    failed: {variant.failed.strip().splitlines()[-1]}")
                continue
            try:
                time.sleep(1.0)  # the route and the first polls settle
                self._scenario(scenario, variant.name, agents, raw)
            except Exception as error:  # one variant's failure must not end the run for the others
                message = f"{scenario}: {type(error).__name__}: {error}"
                self.results.errors.setdefault(variant.name, []).append(message)
                say(f"    error: {message}")
            finally:
                stop(agents)
                empty_bucket(self.store)

    def _scenario(
        self, scenario: str, name: str, agents: Mapping[str, subprocess.Popen[bytes]], raw: float | None
    ) -> None:
        results = self.results
        if scenario == "ping":
            for kind, (interval, count) in self.plan.pings.items():
                before = both_nodes(self.lab)
                with Busy(busy_groups(self.lab, agents)) as busy:
                    got = ping(self.lab, interval, count)
                made = (both_nodes(self.lab) - before).requests
                requests = sum(made.values())
                mine = results.pings.setdefault(name, {}).setdefault(
                    kind, {"rtts": [], "sent": 0, "received": 0, "busy": {}, "requests": 0, "medians": [],
                           "by_operation": Counter()})
                mine["by_operation"].update(made)
                # The last 64 objects each way were this ping's: where its time went, per node.
                mine["medians"].append({role: node_medians(self.lab, role) for role in ("local", "peer")})
                add_busy(mine["busy"], busy)
                mine["requests"] += requests
                mine["rtts"].extend(got["rtts"])
                mine["sent"] += got["sent"]
                mine["received"] += got["received"]
        elif scenario == "iperf":
            run = iperf(self.lab, agents, self.plan.iperf_seconds, self.plan.congestion)
            run["raw_mb_s"] = raw
            results.iperf.setdefault(name, []).append(run)
        elif scenario == "udp":
            for rate in self.plan.udp_rates:
                results.udp.setdefault(name, {}).setdefault(rate, []).append(
                    iperf_udp(self.lab, rate, self.plan.udp_seconds))
        elif scenario == "idle":
            # Idle is after the heartbeat has backed off to its slowest, and after a doorbell node's
            # catch-up listings, once a minute for a minute after traffic, have backed off too.
            time.sleep(IDLE_SETTLE)
            before = both_nodes(self.lab)
            seconds = self.plan.idle_seconds / self.plan.rounds
            time.sleep(seconds)
            results.idle.setdefault(name, []).append((seconds, both_nodes(self.lab) - before))
        elif scenario == "outage":
            results.outage.setdefault(name, []).append(ping_after_outage(self.lab, self.plan.outage_seconds))
            if any(process.poll() is not None for process in agents.values()):
                results.errors.setdefault(name, []).append("outage: an agent exited while S3 was down")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- the report -------------------------------------------------------------------------------------------

def figures(results: Results, variants: list[Variant], prices: PriceTable) -> dict[str, Any]:
    """The run's figures, ready for JSON and the table."""
    report: dict[str, Any] = {"endpoint": {
        client: {op: {**spread(timing.wall), "client_cpu_ms": _mean(timing.client_cpu),
                      "server_cpu_ms": _mean(timing.server_cpu)} for op, timing in timings.items()}
        for client, timings in results.endpoint.items()}}
    # The endpoint's own pace: through the client that adds least to it.
    floors = [2 * (ops["put"]["p50"] + ops["get"]["p50"]) for ops in report["endpoint"].values()
              if ops["put"]["n"] and ops["get"]["n"]]
    floor = min(floors) if floors else None
    report["floor_rtt_ms"] = floor
    raw = statistics.median(results.raw_mb_s) if results.raw_mb_s else None
    report["raw_pipeline_mb_s"] = {"median": raw, "runs": results.raw_mb_s}
    report["nat_gateway_dollars_per_gb"] = prices.nat_gateway(0, GB)
    report["variants"] = {}
    for variant in variants:
        mine: dict[str, Any] = {"code": variant.describe, "args": list(variant.args), "failed": variant.failed,
                                "errors": results.errors.get(variant.name, [])}
        for kind, got in results.pings.get(variant.name, {}).items():
            summary = spread(got["rtts"])
            summary["loss_percent"] = 100 * (1 - got["received"] / got["sent"]) if got["sent"] else None
            if floor and summary["n"]:
                summary["p50_over_floor"] = summary["p50"] / floor
                summary["p99_over_floor"] = summary["p99"] / floor
            summary["cpu_percent"] = _cpu_percent(got["busy"])
            summary["requests_per_ping"] = got["requests"] / got["sent"] if got["sent"] else None
            summary["agent_cpu_ms_per_request"] = (1000 * got["busy"].get("agents", 0.0) / got["requests"]
                                                   if got["requests"] else None)
            summary["one_way_ms"] = one_way(got["medians"])
            summary["requests_per_ping_by_operation"] = {
                f"{service}_{operation}": count / got["sent"] for (service, operation), count
                in sorted(got["by_operation"].items()) if got["sent"]}
            summary["client_cpu_ms_per_request"] = client_cpu(got["by_operation"], report["endpoint"])
            mine[f"ping_{kind}"] = summary
        runs = results.iperf.get(variant.name, [])
        if runs:
            busy: dict[str, float] = {}
            for run in runs:
                add_busy(busy, run["busy"])
            counters = sum((run["counters"] for run in runs), Counters())
            # Per GB carried: every packet the tunnel delivered while the requests were counted, acks too.
            moved = max(counters.moved["hoshino_bytes_ingressed_total"], 1)
            cost, unpriced = dollars(prices, counters)
            mine["iperf"] = {
                "mb_s": statistics.median(run["mb_s"] for run in runs),
                "runs_mb_s": [run["mb_s"] for run in runs],
                "raw_mb_s": [run["raw_mb_s"] for run in runs],
                "over_raw_pipeline": statistics.median(run["mb_s"] / run["raw_mb_s"] for run in runs),
                "iperf_bytes": sum(run["bytes"] for run in runs),
                "tunnel_bytes": moved,
                "requests": {f"{s}:{o}": n for (s, o), n in sorted(counters.requests.items())},
                "requests_per_gb": {f"{s}:{o}": n * GB / moved for (s, o), n in sorted(counters.requests.items())},
                "dropped_packets": counters.moved["hoshino_dropped_packets_total"],
                "dollars_per_gb": cost * GB / moved,
                "unpriced": unpriced,
                "rss_peak_mib": {role: max(run["rss_peak_mib"][role] for run in runs) for role in ROLES},
                "cpu_seconds_per_mb": sum(run["cpu_seconds"] for run in runs) / (moved / MB),
                "retransmits": [run["retransmits"] for run in runs],
                "runs": [{key: run[key] for key in ("mb_s", "raw_mb_s", "tcp_mean_rtt_ms", "tcp_max_cwnd_kib")}
                         for run in runs],
                "tcp_congestion": runs[0]["congestion"],
                "tcp_mean_rtt_ms": _median_of(run["tcp_mean_rtt_ms"] for run in runs),
                "tcp_max_cwnd_kib": _median_of(run["tcp_max_cwnd_kib"] for run in runs),
                "cpu_percent": _cpu_percent(busy),
                "agent_cpu_ms_per_request": (1000 * busy.get("agents", 0.0) / sum(counters.requests.values())
                                             if counters.requests else None),
            }
        for rate, udp_runs in results.udp.get(variant.name, {}).items():
            mine[f"udp_{rate:g}"] = {
                "lost_percent": _median_of(run["lost_percent"] for run in udp_runs),
                "jitter_ms": _median_of(run["jitter_ms"] for run in udp_runs),
                "rcvbuf_errors": sum(run["rcvbuf_errors"] for run in udp_runs),
                "runs": udp_runs,
            }
        slices = results.idle.get(variant.name, [])
        if slices:
            seconds = sum(length for length, _ in slices)
            counters = sum((got for _, got in slices), Counters())
            per_node_day = {f"{s}:{o}": n / len(ROLES) * DAY / seconds
                            for (s, o), n in sorted(counters.requests.items())}
            cost, unpriced = dollars(prices, counters)
            mine["idle"] = {
                "seconds": seconds,
                "requests_per_node_day": per_node_day,
                "total_per_node_day": sum(per_node_day.values()),
                "dollars_per_node_day": cost / len(ROLES) * DAY / seconds,
                "unpriced": unpriced,
            }
        if variant.name in results.outage:
            mine["outage_recovery_seconds"] = results.outage[variant.name]
        report["variants"][variant.name] = mine
    return report


def client_cpu(made: Counter[tuple[str, str]], endpoint: dict[str, Any]) -> float | None:
    """The S3 clients' share of the agents' CPU per request: each S3 request made, at the client CPU the endpoint
    scenario measured for its kind through the client the agent sends it with (obstore, but boto3 for LIST);
    SQS requests count as boto3's PUT. None without the endpoint scenario."""
    if not {"obstore", "boto3"} <= set(endpoint):
        return None
    total = sum(made.values())
    spent = 0.0
    for (service, operation), count in made.items():
        if service == "sqs":
            client, kind = "boto3", "put"
        else:
            client, kind = ("boto3" if operation == "list" else "obstore"), operation
        spent += count * (endpoint[client].get(kind, {}).get("client_cpu_ms") or 0.0)
    return spent / total if total else None


def one_way(medians: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Where a ping's time went each way (median over rounds of each node's medians): the sender's queueing
    and PUT, the receiver's finding (from the key's time, so the PUT included), fetching (the GET included)
    and holding (waiting for its turn in key order)."""
    ways: dict[str, dict[str, float]] = {}
    for sender, receiver in (("local", "peer"), ("peer", "local")):
        parts = {"queued": (sender, "stage_queued"), "put": (sender, "s3_put"), "found": (receiver, "stage_found"),
                 "list": (receiver, "s3_list"), "fetched": (receiver, "stage_fetched"), "get": (receiver, "s3_get"),
                 "held": (receiver, "stage_held")}
        way = {part: statistics.median(values) for part, (role, key) in parts.items()
               if (values := [run[role][key] for run in medians if key in run.get(role, {})])}
        if way:
            ways[f"{sender} to {receiver}"] = way
    return ways


def _sum_of(figures: dict[str, Any], scope: str, key: str) -> float | None:
    values = [value for value in figures.get(scope, {}).get(key, []) if value is not None]
    return sum(values) if values else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median_of(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _cpu_percent(busy: Mapping[str, float]) -> dict[str, float]:
    """Each group's CPU time as a percentage of one core over the wall time."""
    wall = busy.get("wall", 0.0)
    return {name: 100 * seconds / wall for name, seconds in busy.items() if name != "wall" and wall}


def rows(report: dict[str, Any]) -> list[tuple[str, str, Callable[[dict[str, Any]], float | None]]]:
    """(label, format, getter from one variant's figures) for each row of the table."""

    def at(*path: str) -> Callable[[dict[str, Any]], float | None]:
        def get(figures: dict[str, Any]) -> float | None:
            value: Any = figures
            for step in path:
                if not isinstance(value, dict) or step not in value:
                    return None
                value = value[step]
            return value if isinstance(value, int | float) else None
        return get

    table: list[tuple[str, str, Callable[[dict[str, Any]], float | None]]] = []
    for kind in ("hot", "warm", "cold"):
        table += [
            (f"ping {kind}: p50 ms", "{:.1f}", at(f"ping_{kind}", "p50")),
            (f"ping {kind}: p99 ms", "{:.1f}", at(f"ping_{kind}", "p99")),
            (f"ping {kind}: loss %", "{:.1f}", at(f"ping_{kind}", "loss_percent")),
            (f"ping {kind}: p50 / floor_rtt", "{:.2f}", at(f"ping_{kind}", "p50_over_floor")),
            (f"ping {kind}: p99 / floor_rtt", "{:.2f}", at(f"ping_{kind}", "p99_over_floor")),
            (f"ping {kind}: requests per ping (S3 + SQS)", "{:.1f}", at(f"ping_{kind}", "requests_per_ping")),
            (f"ping {kind}: S3 server CPU %", "{:.0f}", at(f"ping_{kind}", "cpu_percent", "server")),
            (f"ping {kind}: SQS server CPU %", "{:.0f}", at(f"ping_{kind}", "cpu_percent", "sqs")),
            (f"ping {kind}: agents CPU %", "{:.0f}", at(f"ping_{kind}", "cpu_percent", "agents")),
            (f"ping {kind}: agent CPU ms per request", "{:.2f}", at(f"ping_{kind}", "agent_cpu_ms_per_request")),
            (f"ping {kind}: of which S3 clients' (estimated)", "{:.2f}",
             at(f"ping_{kind}", "client_cpu_ms_per_request")),
        ]
    table += [
        ("iperf3 MB/s", "{:.2f}", at("iperf", "mb_s")),
        ("iperf3 / raw pipeline just before", "{:.2f}", at("iperf", "over_raw_pipeline")),
        ("iperf3: TCP mean RTT ms", "{:.0f}", at("iperf", "tcp_mean_rtt_ms")),
        ("iperf3: TCP max cwnd KiB", "{:,.0f}", at("iperf", "tcp_max_cwnd_kib")),
        ("iperf3: TCP retransmissions", "{:.0f}", lambda figures: _sum_of(figures, "iperf", "retransmits")),
        ("dropped packets (iperf3)", "{:.0f}", at("iperf", "dropped_packets")),
        ("iperf3: S3 server CPU %", "{:.0f}", at("iperf", "cpu_percent", "server")),
        ("iperf3: SQS server CPU %", "{:.0f}", at("iperf", "cpu_percent", "sqs")),
        ("iperf3: agents CPU %", "{:.0f}", at("iperf", "cpu_percent", "agents")),
        ("iperf3: agent CPU ms per request", "{:.2f}", at("iperf", "agent_cpu_ms_per_request")),
    ]
    rates = sorted({float(key[4:]) for figures in report["variants"].values() for key in figures
                    if key.startswith("udp_")})
    for rate in rates:
        table += [
            (f"UDP {rate:g} Mbit/s: loss %", "{:.2f}", at(f"udp_{rate:g}", "lost_percent")),
            (f"UDP {rate:g} Mbit/s: jitter ms", "{:.1f}", at(f"udp_{rate:g}", "jitter_ms")),
            (f"UDP {rate:g} Mbit/s: receiver's Udp6RcvbufErrors", "{:.0f}", at(f"udp_{rate:g}", "rcvbuf_errors")),
        ]
    operations = sorted({op for figures in report["variants"].values()
                         for op in {**figures.get("iperf", {}).get("requests_per_gb", {}),
                                    **figures.get("idle", {}).get("requests_per_node_day", {})}})
    table += [(f"requests per GB: {op}", "{:,.0f}", at("iperf", "requests_per_gb", op)) for op in operations]
    table += [
        ("$ per GB moved (requests)", "{:.3f}", at("iperf", "dollars_per_gb")),
        ("agent CPU s per MB", "{:.3f}", at("iperf", "cpu_seconds_per_mb")),
        ("agent RSS peak MiB, local", "{:.0f}", at("iperf", "rss_peak_mib", "local")),
        ("agent RSS peak MiB, peer", "{:.0f}", at("iperf", "rss_peak_mib", "peer")),
    ]
    table += [(f"idle per node-day: {op}", "{:,.0f}", at("idle", "requests_per_node_day", op)) for op in operations]
    table += [
        ("idle requests per node-day", "{:,.0f}", at("idle", "total_per_node_day")),
        ("idle $ per node-day", "{:.3f}", at("idle", "dollars_per_node_day")),
    ]
    return table


TARGETS = (
    # (label, path in a variant's figures, the target, True when the figure must stay at or below it)
    ("agent CPU ms/request (iperf3)", ("iperf", "agent_cpu_ms_per_request"), 0.4, True),
    ("agent CPU ms/request (hot ping)", ("ping_hot", "agent_cpu_ms_per_request"), 0.4, True),
    ("iperf3/raw", ("iperf", "over_raw_pipeline"), 1.0, False),
    ("hot p50/floor", ("ping_hot", "p50_over_floor"), 3.0, True),
    ("warm p50/floor", ("ping_warm", "p50_over_floor"), 2.5, True),
    ("cold p50/floor", ("ping_cold", "p50_over_floor"), 2.5, True),
    ("$/GB", ("iperf", "dollars_per_gb"), 0.01, True),
    ("RSS MiB", ("iperf", "rss_peak_mib", "local"), 100.0, True),
)
"""The targets of the work this benchmark follows (docs/performance.md); warm and cold are the doorbell's."""


def summary_line(name: str, figures: dict[str, Any]) -> str:
    """One line per variant: each target's figure, and its ratio to the target (met when <= 1)."""
    parts = []
    for label, path, target, at_most in TARGETS:
        value: Any = figures
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            ratio = value / target if at_most else (target / value if value else float("inf"))
            parts.append(f"{label} {value:.3g} ({ratio:.2f}{' ok' if ratio <= 1 else ''})")
    return f"targets, {name}: " + "; ".join(parts) if parts else ""


def print_table(report: dict[str, Any], prices: PriceTable) -> None:
    for client, endpoint_figures in report["endpoint"].items():
        if endpoint_figures["put"].get("n"):
            print(f"endpoint through {client}, 100-byte objects (ms; n={endpoint_figures['put']['n']}; "
                  f"CPU: means per request):")
        for operation, summary in endpoint_figures.items():
            if summary.get("n"):
                server = summary["server_cpu_ms"]
                print(f"  {operation:<6} p50 {summary['p50']:6.2f}   p99 {summary['p99']:6.2f}   "
                      f"client CPU {summary['client_cpu_ms']:5.2f}   server CPU "
                      + (f"{server:5.2f}" if server is not None else "-"))
    if report["floor_rtt_ms"]:
        print(f"  floor_rtt = 2 x (PUT + GET), through the faster client = {report['floor_rtt_ms']:.1f} ms")
    raw = report["raw_pipeline_mb_s"]
    if raw["median"]:
        runs = ", ".join(f"{value:.1f}" for value in raw["runs"])
        print(f"raw pipeline, 1 writer + 1 reader, 256 KiB objects: {raw['median']:.1f} MB/s (runs: {runs})")
    print(f"prices: {prices.name}; a NAT gateway charges ${report['nat_gateway_dollars_per_gb']:.3f} per GB "
          f"and ${prices.nat_gateway(24, 0):.2f} per day\n")
    names = list(report["variants"])
    first = names[0]
    header = ["", *names, *[f"{name}/{first}" for name in names[1:]]]
    lines = []
    for label, fmt, get in rows(report):
        values = [get(report["variants"][name]) for name in names]
        if all(value is None for value in values):
            continue
        cells = [label, *[fmt.format(value) if value is not None else "-" for value in values]]
        for value in values[1:]:
            base = values[0]
            cells.append(f"{value / base:.2f}" if value is not None and base else "-")
        lines.append(cells)
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        print("  ".join(str(cell).ljust(widths[0]) if i == 0 else str(cell).rjust(widths[i])
                        for i, cell in enumerate(row)))
    print()
    for name, figures in report["variants"].items():
        if line := summary_line(name, figures):
            print(line)
    for name, figures in report["variants"].items():
        for kind in ("hot", "warm", "cold"):
            made = figures.get(f"ping_{kind}", {}).get("requests_per_ping_by_operation", {})
            if made:
                print(f"{name}: {kind} ping, requests per ping: "
                      + ", ".join(f"{operation} {count:.2f}" for operation, count in made.items()))
            ways = figures.get(f"ping_{kind}", {}).get("one_way_ms", {})
            for way, parts in ways.items():
                told = ", ".join(f"{part} {ms:.1f}" for part, ms in parts.items())
                print(f"{name}: {kind} ping, {way}, medians in ms: {told} (found counts from the key's time, so "
                      f"its PUT with it, and the two nodes' clocks' difference; fetched includes the GET)")
            if len(ways) == 2:
                stages = sum(parts.get(stage, 0.0) for parts in ways.values() for stage in STAGES)
                print(f"{name}: {kind} ping, the stages both ways add up to {stages:.1f} ms (the clocks' difference "
                      f"cancels), against a p50 round trip of {figures[f'ping_{kind}']['p50']:.1f} ms")
    for name, figures in report["variants"].items():
        if figures["failed"]:
            lines = figures["failed"].strip().splitlines()
            print(f"\n{name} FAILED: {lines[0][:200]}" + (f" ... {lines[-1]}" if len(lines) > 1 else ""))
        for error in figures["errors"]:
            print(f"{name}: {error[:300]}")
        if "outage_recovery_seconds" in figures:
            times = ", ".join("never" if t is None else f"{t:.1f} s" for t in figures["outage_recovery_seconds"])
            print(f"{name}: after S3 came back, a ping got through in {times}")
        for scope in ("iperf", "idle"):
            if figures.get(scope, {}).get("unpriced"):
                print(f"{name}: {scope}: no price for {', '.join(figures[scope]['unpriced'])}")


# ---- main -------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run: one round, a few seconds each")
    parser.add_argument("--rounds", type=int, help="times each scenario takes turns between the variants (2)")
    parser.add_argument("--idle-seconds", type=float, help="idle time measured per variant, over all rounds (120)")
    parser.add_argument("--iperf-seconds", type=float, help="length of each iperf3 run (10)")
    parser.add_argument("--outage-seconds", type=float, default=0.0,
                        help="how long S3 is down in the outage scenario (default 0: skipped)")
    parser.add_argument("--baseline", metavar="REF", help="also run agents from this commit (a git worktree)")
    parser.add_argument("--variant", metavar="NAME=ARGS", action="append", type=parse_variant, default=[],
                        help="also run this checkout's agents with extra flags, e.g. sqs='--wakeup sqs'")
    parser.add_argument("--sealed-variant", metavar="NAME=ARGS", action="append", default=[],
                        type=functools.partial(parse_variant, sealed=True),
                        help="a variant of this checkout with these flags and sealing on (keys made for it)")
    parser.add_argument("--scenarios", default="endpoint,ping,iperf,udp,idle,outage",
                        help="which scenarios to run, comma-separated (default: all)")
    parser.add_argument("--udp-rates", default="8,20,40", metavar="MBIT[,MBIT]",
                        help="offered rates of the UDP scenario, in Mbit/s (default 8,20,40)")
    parser.add_argument("--tcp-congestion", metavar="NAME",
                        help="iperf3's TCP congestion control, e.g. cubic (default: the system's)")
    parser.add_argument("--s3", choices=S3_ENGINES, default="moto",
                        help="the lab's S3 engine: moto's server or SeaweedFS (default moto); SQS is moto's")
    parser.add_argument("--prices", default=DEFAULT_PRESET, help="price preset or TOML file (agent/prices.py)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure here as JSON")
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(scenarios) - {"endpoint", "ping", "iperf", "udp", "idle", "outage"}
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return Plan(
        rounds=args.rounds or (1 if quick else 2),
        endpoint_requests=30 if quick else 100,
        raw_seconds=3 if quick else 10,
        # hot: 50 a second for ~5 s; warm: 5 a second; cold: one every 2 s, the receiver idle between.
        pings={"hot": (0.02, 50 if quick else 250), "warm": (0.2, 10 if quick else 25),
               "cold": (2.0, 3 if quick else 10)},
        iperf_seconds=args.iperf_seconds or (3 if quick else 10),
        idle_seconds=args.idle_seconds or (10 if quick else 120),
        outage_seconds=args.outage_seconds,
        scenarios=scenarios,
        congestion=args.tcp_congestion,
        udp_rates=tuple(float(rate) for rate in args.udp_rates.split(",") if rate.strip()),
        udp_seconds=3 if quick else 8,
    )


def main() -> int:
    args = build_parser().parse_args()
    plan = plan_from(args)
    try:
        prices = load_prices(args.prices)
    except PriceError as error:
        raise SystemExit(f"--prices: {error}") from None
    if shutil.which("iperf3") is None and "iperf" in plan.scenarios:
        raise SystemExit("iperf3 is missing: run scripts/install-system-packages (as root)")
    names = [variant.name for variant in args.variant]
    if len(set(names)) != len(names) or {"current", "baseline"} & set(names):
        raise SystemExit("each --variant needs a name of its own, neither 'current' nor 'baseline'")
    started = datetime.datetime.now(datetime.UTC)
    with contextlib.ExitStack() as stack:
        variants: list[Variant] = []
        if args.baseline:
            code, commit = stack.enter_context(checkout(args.baseline))
            variants.append(Variant("baseline", code=code, describe=f"{args.baseline} ({commit})"))
        variants.append(Variant("current", describe="this checkout"))
        variants += args.variant + args.sealed_variant
        for variant in variants:
            stack.callback(variant.close)
        # each variant says how it wakes
        lab = stack.enter_context(Lab(bucket="hoshino-bench", wakeup=None, s3=args.s3))
        results = Bench(lab, variants, plan).run()
    report = figures(results, variants, prices)
    report["run"] = {
        "command": shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.datetime.now(datetime.UTC) - started).total_seconds()),
        "commit": subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True, check=False).stdout.strip(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "prices": prices.name,
        "s3_engine": args.s3,
        "plan": plan.__dict__,
    }
    print_table(report, prices)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 1 if all(variant.failed for variant in variants) else 0


if __name__ == "__main__":
    sys.exit(main())
