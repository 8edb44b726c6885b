"""Two nodes on one machine: a local S3 server with a bucket, a namespace for each node, agents and traffic."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from agent.config import DEFAULT_NETWORK, Config
from agent.lab.hostile import HostileObjects
from agent.lab.namespaces import Namespace, remove_orphaned_namespaces
from agent.lab.server import LabError, S3Server, make_s3_server, stop_process
from agent.lab.traffic import DemoTraffic, Service, UdpEcho
from agent.transport.sqs import QUEUE_ATTRIBUTES, queue_name

ROLES = ("local", "peer")
HOSTS = {"local": 0xA, "peer": 0xB, "third": 0xC}
"""The last bits of each role's address in the lab's network: ::a, ::b and, in a lab of three, ::c."""

STARTED = re.compile(r"^hoshino-agent: (?!error:)", re.MULTILINE)
"""The line an agent prints once its device is up."""


SERVICE_GRACE = 0.5
"""How long closing waits for each traffic service's thread, once everything else is gone."""


class Lab:
    """A local S3 server with a bucket, and two namespaces: 'local' and 'peer', each for one node.

    Its nodes wake on the SQS doorbell by default. SQS is a second moto server, a process of its own,
    as it is a service of its own on AWS: in one process its requests would take S3's turns (and
    SeaweedFS, the other engine, has no SQS).
    """

    def __init__(
        self,
        bucket: str = "hoshino-lab",
        network: str = DEFAULT_NETWORK,
        slowest_poll: float = 0.5,
        fastest_poll: float = 0.001,
        wakeup: str | None = "sqs",
        s3: str | None = None,
        roles: tuple[str, ...] = ROLES,
    ) -> None:
        """wakeup None: the agents' own default, and no --wakeup flag (for agents that predate it);
        s3: the S3 engine, moto or seaweedfs (default: $HOSHINO_TEST_S3, else moto);
        roles: the nodes, each with a namespace (ROLES, with 'third' for a lab of three)."""
        self.bucket = bucket
        self.network = ipaddress.IPv6Network(network)
        self.slowest_poll = slowest_poll
        self.fastest_poll = fastest_poll
        self.wakeup = wakeup
        self.roles = roles
        self.local_address = self.network.network_address + HOSTS["local"]
        self.peer_address = self.network.network_address + HOSTS["peer"]
        self.server = make_s3_server(s3)
        self.sqs = S3Server()
        self.namespaces: dict[str, Namespace] = {}
        self.agents: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._services: list[Service] = []
        self.state = Path(tempfile.mkdtemp(prefix="hoshino-lab-state-"))
        """Each node's --state-dir (a folder per role), removed with the lab: a node restarted in the lab
        keeps what it delivered, as on a machine."""

    def __enter__(self) -> Lab:
        if os.geteuid() != 0:
            raise LabError("the lab needs root: it creates network namespaces and TUN devices")
        remove_orphaned_namespaces()
        try:
            self.server.start()
            self.server.create_bucket(self.bucket)
            self.sqs.start()
            if self.wakeup == "sqs":
                self.provision_queues()
            for role in self.roles:
                self.namespaces[role] = Namespace(role)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def stop_agents(self) -> None:
        """Tell the traffic and every agent to stop, without waiting: they wind down together, and
        alongside whatever else is stopping, while close() waits for them."""
        for service in reversed(self._services):
            service.request_stop()
        for process in self.agents:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        """Stop traffic and agents, remove the namespaces, stop the server; each step on its own."""
        self.stop_agents()
        for process in self.agents:
            with contextlib.suppress(Exception):
                stop_process(process)
        for namespace in self.namespaces.values():
            with contextlib.suppress(Exception):
                namespace.close()
        self.server.stop()
        self.sqs.stop()
        for log in self._logs:
            log.unlink(missing_ok=True)
        shutil.rmtree(self.state, ignore_errors=True)
        # Last, and briefly: an exchange that was in flight when the tunnel went ends by its own
        # timeout (a few seconds), in its daemon thread, which then sees that it is to stop.
        for service in reversed(self._services):
            with contextlib.suppress(Exception):
                service.stop(timeout=SERVICE_GRACE)
        self._services.clear()

    def provision_queues(self) -> None:
        """Each node's doorbell queue, made before its agent starts, as deploy/terraform makes them (an
        agent that has to make its own listens by listing for a minute, until its senders know of it)."""
        sqs = self.sqs.sqs_client()
        for role in self.roles:
            sqs.create_queue(QueueName=queue_name("", self.address(role)), Attributes=QUEUE_ATTRIBUTES)

    def address(self, role: str) -> ipaddress.IPv6Address:
        return self.network.network_address + HOSTS[role]

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
            "sqs_endpoint_url": self.sqs.endpoint_url,
            "state_dir": str(self.state / role),
        }
        if self.wakeup is not None:
            settings["wakeup"] = self.wakeup
        settings.update(overrides)
        return Config(**settings)  # type: ignore[arg-type]

    def local_config(self, **overrides: object) -> Config:
        return self.config("local", **overrides)

    def spawn_agent(
        self, role: str, *extra: str, timeout: float = 20,
        code: Path | None = None, env: Mapping[str, str] | None = None, inside: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Run hoshino-agent for this role as a process of its own; return once its device is up.

        code: a checkout whose agent runs instead of this one's (it comes first on PYTHONPATH);
        env: variables added to the agent's environment (its own credentials, say);
        inside: run the agent itself in the role's namespace, not only its device (extra must then
        name endpoints it can reach from there).
        """
        config = self.config(role)
        # The state directory goes by the environment: an agent of an older checkout ignores it.
        environment = {**os.environ, "HOSHINO_STATE_DIR": str(config.state_dir), **(env or {})}
        if code is not None:
            environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), environment.get("PYTHONPATH")]))
        log = Path(tempfile.mkstemp(prefix=f"hoshino-{role}-", suffix=".log")[1])
        self._logs.append(log)
        command = [
            *(("ip", "netns", "exec", str(config.netns)) if inside else ()),
            sys.executable, "-m", "agent",
            "--bucket", self.bucket, "--endpoint-url", self.server.endpoint_url,
            "--network", str(self.network), "--address", str(config.address),
            "--netns", "" if inside else str(config.netns),
            "--slowest-poll", f"{self.slowest_poll}s", "--fastest-poll", f"{self.fastest_poll}s",
            *(("--wakeup", self.wakeup, "--sqs-endpoint-url", self.sqs.endpoint_url) if self.wakeup else ()),
            *extra,
        ]
        with log.open("wb") as output:
            # From code's directory, since `python -m` puts the working directory before PYTHONPATH.
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=code, env=environment)
        self.agents.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"agent {role} exited {process.returncode}: {log.read_text()[-2000:]}")
            # "hoshino-agent: error: ..." is an agent on its way out (a flag it does not know, say).
            if STARTED.search(log.read_text()):
                return process
            time.sleep(0.05)
        raise LabError(f"agent {role} did not start within {timeout}s: {log.read_text()[-2000:]}")

    def agent_log(self, process: subprocess.Popen[bytes]) -> str:
        return self._logs[self.agents.index(process)].read_text()

    def start_peer(self, *extra: str) -> subprocess.Popen[bytes]:
        """The peer node (extra: more agent flags), with a UDP echo service in its namespace."""
        process = self.spawn_agent("peer", *extra)
        self._services.append(UdpEcho(self.namespaces["peer"].name, self.peer_address).start())
        return process

    def start_traffic(self, hostile: bool = True) -> DemoTraffic:
        """A gentle, varied stream from the local namespace to the peer: ping, TCP, UDP, multicast;
        with hostile, a malformed object in the local node's inbox now and then, which it drops."""
        traffic = DemoTraffic(self.namespaces["local"].name, self.peer_address).start()
        self._services.append(traffic)
        if hostile:
            self._services.append(HostileObjects(self.server, self.sqs, self.bucket, self.local_address).start())
        return traffic


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll a callable until it returns true or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
