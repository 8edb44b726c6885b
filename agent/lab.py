"""The lab: a local S3 API server, network namespaces and agents, for the demo, tests and benchmarks.

Traffic stays on this machine: S3 on 127.0.0.1, and each node's device in a namespace the lab
made. Everything the lab creates it removes by its own name or PID, even when a test fails.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from agent import netconf, wire
from agent.config import DEFAULT_NETWORK, Config
from agent.traffic import DemoTraffic, Service, UdpEcho

LOOPBACK = "127.0.0.1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "hoshino-lab",
    "AWS_SECRET_ACCESS_KEY": "hoshino-lab",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class LabError(RuntimeError):
    """The lab could not be set up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def use_lab_credentials() -> None:
    """Give boto3 credentials for the local server, unless some are set already."""
    for name, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM one process we started, then SIGKILL it if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class S3Server:
    """moto's S3 API server in its own process on 127.0.0.1 (its own GIL, as S3 would be)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> S3Server:
        use_lab_credentials()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open for the server's life, closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                raise LabError(f"moto server exited: {self._log.read().decode(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return self
            time.sleep(0.05)
        self.stop()
        raise LabError(f"moto server did not answer on {self.endpoint_url} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
            self._log.close()

    def restart(self) -> None:
        """Stop the server and start it again on the same port (its contents are lost)."""
        self.stop()
        self.start()

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


NAMESPACE_NAME = re.compile(r"^hoshino-[a-z]+-(\d+)-[0-9a-f]{4}$")


class Namespace:
    """A network namespace named for its role and the creating process, removed on close."""

    def __init__(self, role: str) -> None:
        self.name = f"hoshino-{role}-{os.getpid()}-{secrets.token_hex(2)}"
        netconf.create_namespace(self.name)

    def close(self) -> None:
        netconf.remove_namespace(self.name)


def remove_orphaned_namespaces() -> list[str]:
    """Remove lab namespaces whose creating process is gone (it was killed before it could)."""
    removed = []
    for path in sorted(netconf.NETNS_DIR.glob("hoshino-*")):
        match = NAMESPACE_NAME.match(path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            netconf.remove_namespace(path.name)
            removed.append(path.name)
    return removed


class Lab:
    """A local S3 server with a bucket, and two namespaces: 'local' and 'peer', each for one node."""

    def __init__(
        self,
        bucket: str = "hoshino-lab",
        network: str = DEFAULT_NETWORK,
        slowest_poll: float = 0.5,
        fastest_poll: float = 0.001,
    ) -> None:
        self.bucket = bucket
        self.network = ipaddress.IPv6Network(network)
        self.slowest_poll = slowest_poll
        self.fastest_poll = fastest_poll
        self.local_address = self.network.network_address + 0xA
        self.peer_address = self.network.network_address + 0xB
        self.server = S3Server()
        self.namespaces: dict[str, Namespace] = {}
        self.agents: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._services: list[Service] = []

    def __enter__(self) -> Lab:
        if os.geteuid() != 0:
            raise LabError("the lab needs root: it creates network namespaces and TUN devices")
        remove_orphaned_namespaces()
        try:
            self.server.start()
            self.server.create_bucket(self.bucket)
            for role in ("local", "peer"):
                self.namespaces[role] = Namespace(role)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop traffic and agents, remove the namespaces, stop the server; each step on its own."""
        for service in reversed(self._services):
            with contextlib.suppress(Exception):
                service.stop()
        for process in self.agents:
            with contextlib.suppress(Exception):
                stop_process(process)
        for namespace in self.namespaces.values():
            with contextlib.suppress(Exception):
                namespace.close()
        self.server.stop()
        for log in self._logs:
            log.unlink(missing_ok=True)

    def address(self, role: str) -> ipaddress.IPv6Address:
        return self.local_address if role == "local" else self.peer_address

    def config(self, role: str, **overrides: object) -> Config:
        """Settings for the node of this role (its device in the role's namespace)."""
        settings: dict[str, object] = {
            "bucket": self.bucket,
            "endpoint_url": self.server.endpoint_url,
            "network": self.network,
            "address": self.address(role),
            "netns": self.namespaces[role].name,
            "slowest_poll": self.slowest_poll,
            "fastest_poll": self.fastest_poll,
        }
        settings.update(overrides)
        return Config(**settings)  # type: ignore[arg-type]

    def local_config(self, **overrides: object) -> Config:
        return self.config("local", **overrides)

    def spawn_agent(self, role: str, *extra: str, timeout: float = 20) -> subprocess.Popen[bytes]:
        """Run hoshino-agent for this role as a process of its own; return once its device is up."""
        config = self.config(role)
        log = Path(tempfile.mkstemp(prefix=f"hoshino-{role}-", suffix=".log")[1])
        self._logs.append(log)
        command = [
            sys.executable, "-m", "agent",
            "--bucket", self.bucket, "--endpoint-url", self.server.endpoint_url,
            "--network", str(self.network), "--address", str(config.address),
            "--netns", str(config.netns),
            "--slowest-poll", f"{self.slowest_poll}s", "--fastest-poll", f"{self.fastest_poll}s",
            *extra,
        ]
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.agents.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"agent {role} exited {process.returncode}: {log.read_text()[-2000:]}")
            if "hoshino-agent:" in log.read_text():
                return process
            time.sleep(0.05)
        raise LabError(f"agent {role} did not start within {timeout}s: {log.read_text()[-2000:]}")

    def agent_log(self, process: subprocess.Popen[bytes]) -> str:
        return self._logs[self.agents.index(process)].read_text()

    def start_peer(self) -> subprocess.Popen[bytes]:
        """The peer node, with a UDP echo service in its namespace."""
        process = self.spawn_agent("peer")
        self._services.append(UdpEcho(self.namespaces["peer"].name, self.peer_address).start())
        return process

    def start_traffic(self, hostile: bool = True) -> DemoTraffic:
        """A gentle, varied stream from the local namespace to the peer: ping, TCP, UDP, multicast;
        with hostile, a malformed object in the local node's inbox now and then, which it drops."""
        traffic = DemoTraffic(self.namespaces["local"].name, self.peer_address).start()
        self._services.append(traffic)
        if hostile:
            self._services.append(HostileObjects(self.server, self.bucket, self.local_address).start())
        return traffic


class HostileObjects(Service):
    """Puts a malformed object into a node's inbox every so often, as a hostile bucket might."""

    def __init__(self, server: S3Server, bucket: str, victim: ipaddress.IPv6Address, period: float = 30.0) -> None:
        super().__init__(None)  # S3 is on this namespace's loopback
        self.server = server
        self.bucket = bucket
        self.keys = wire.KeyMaker()
        self.victim = victim
        self.period = period
        self.planted = 0

    def start(self) -> HostileObjects:
        super().start()
        return self

    def run(self) -> None:
        client = self.server.client()
        delay = 4.0
        while not self._stop.wait(delay):
            with contextlib.suppress(Exception):  # the server may be restarting: try again later
                client.put_object(Bucket=self.bucket, Key=self.keys.make(self.victim),
                                  Body=b"\x00not a packet: a malformed object planted by the demo")
                self.planted += 1
            delay = self.period


def run_in(namespace: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace (ip netns exec) and capture its output."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command], capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll a callable until it returns true or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False

