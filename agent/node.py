"""A node's lifecycle: set up the device and the loops, run them, and undo it all on stop."""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from agent import gateway, heap, ip, metrics, netconf, wire
from agent.address import AddressError, node_address, read_machine_id
from agent.clock import NodeClock
from agent.config import Config
from agent.egress import Egress, EgressSettings
from agent.events import Event, EventQueue, Level, NodeStarted, NodeStopped, Notice, State, StatsSampled
from agent.heartbeat import Heartbeat
from agent.ingress import Ingress, IngressSettings
from agent.ip import derived_ipv4
from agent.journal import Journal, JournalError, journal_name
from agent.prices import PriceError, load_prices
from agent.recent import CarriedObject, RecentObjects
from agent.relay import TcpRelay
from agent.router import RouteError, Router, RouterSettings
from agent.transport import Doorbell, DoorbellError, Guard, GuardedBucket, StoreError, make_doorbell, open_bucket
from agent.transport.sqs import SqsDoorbell, queue_name_problem
from agent.tun import Tun

if TYPE_CHECKING:
    from agent.sealing.tunnel import SealedTunnel

SNAPSHOT_PERIOD = 0.25
SKEW = 2.0
"""Seconds two nodes' estimates of the bucket's time may differ by (agent.clock): keys from further in the
future are refused, and as much is allowed past the max age."""
log = logging.getLogger("hoshino")
START_ERRORS = (netconf.NetconfError, DoorbellError, StoreError, OSError)
"""What a start may meet on a machine or network that will not have it: told in one line, never a traceback."""


class NodeError(RuntimeError):
    """The node cannot run; the message says why and what to do."""


def resolve_address(config: Config) -> ipaddress.IPv6Address:
    """The configured address, or the one derived from the machine-id."""
    if config.address is not None:
        return config.address
    try:
        return node_address(config.network, read_machine_id(config.machine_id_file))
    except AddressError as error:
        raise NodeError(str(error)) from None


class Node:
    """One Hoshino node. start() sets up and returns; stop() undoes everything; both are idempotent."""

    def __init__(self, config: Config, events: EventQueue | None = None) -> None:
        heap.return_large_blocks()  # freed object bodies leave the process (agent/heap.py)
        self.config = config
        self.events = events
        self.address = resolve_address(config)
        if self.address not in config.network:
            raise NodeError(f"address {self.address} is outside network {config.network}")
        if config.wakeup == "sqs" and (problem := queue_name_problem(config.key_prefix, self.address)):
            raise NodeError(problem)
        self.address4 = config.address4 or derived_ipv4(self.address)
        try:
            self.prices = load_prices(config.prices)
        except PriceError as error:
            raise NodeError(f"--prices: {error}") from None
        self.stats = metrics.Stats(price=self.prices.request)
        self.heartbeat = Heartbeat(config.fastest_poll, config.slowest_poll)
        self.recent = RecentObjects() if events is not None else None
        """The objects this node recently sent and received, for an inspector: kept only when a front
        end listens (events), since a headless node has no one to show them to."""
        self.state: State = "starting"
        self.error = ""
        self.started_at = 0.0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._tun: Tun | None = None
        self._configured = False
        self._journal: Journal | None = None
        self._metrics_server: WSGIServer | None = None
        self.guard = Guard(self.stats, self._on_health)
        self.clock = NodeClock(report=lambda message: self._notice("warning", message))
        """The bucket's time as this node knows it: keys are stamped and judged in it."""
        self.bucket: GuardedBucket | None = None
        self.doorbell: Doorbell | None = None
        self.sealed: SealedTunnel | None = None
        self.router: Router | None = None
        self._egress: Egress | None = None
        self.uplink = ""
        """An exit node's uplink, once it forwards."""
        self.wakes_by = "polling its inbox"
        """What wakes the receiver, in words: polling, or the doorbell queue it found or created."""
        self._routing = gateway.Undo()
        self._exit_routing = gateway.Undo()
        """The default routes and rules through an exit node: made and undone as the peers file names it."""
        self._accepted: dict[ip.Network, gateway.Undo] = {}
        """Each peer's prefix routed through the device (--accept-routes), with what removes it."""
        self._follow_lock = threading.Lock()
        """Held while the kernel's routes are made to follow the peers file, or undone."""
        self._exit_hop: ipaddress.IPv6Address | None = None

    # Controls, safe from any thread.
    def faster(self) -> None:
        self.heartbeat.faster()

    def slower(self) -> None:
        self.heartbeat.slower()

    def automatic(self) -> None:
        self.heartbeat.automatic()

    def hold(self, interval: float) -> None:
        self.heartbeat.hold(interval)

    @property
    def interval(self) -> float:
        return self.heartbeat.interval

    @property
    def manual(self) -> bool:
        return self.heartbeat.manual

    def recent_objects(self) -> list[CarriedObject]:
        """The objects this node recently sent and received, oldest first."""
        return self.recent.snapshot() if self.recent is not None else []

    def peers(self) -> int:
        """How many other nodes the peers file lists (a file shared by all lists this one too); 0 unsealed."""
        if self.sealed is None:
            return 0
        return sum(1 for address in self.sealed.sealer.peers.table if address != self.address)

    def reload_peers(self) -> str:
        """Read the peers file again, without dropping traffic; a bad file keeps the old peers. Says what happened,
        to the caller and to a front end (a Notice), and not in the log: the caller tells it once."""
        if self.sealed is None:
            message, level = "not sealed: there is no peers file to reload", "info"
        else:
            from agent.sealing import PeersError

            try:
                self.sealed.reload()
            except PeersError as error:
                message, level = f"peers file not reloaded, the old peers stay: {error}", "warning"
            else:
                count = self.peers()
                message, level = f"peers file reloaded: {count} peer{'s' if count != 1 else ''}", "info"
                if self.router is not None:
                    self.router.table()
                    if self.router.problem:
                        message, level = f"{message}; its routes are not used, the old ones stay: " \
                                         f"{self.router.problem}", "warning"
                    else:
                        message, level = self._follow_peers(message, level)
        self.publish(Notice(time.time(), level, message))  # type: ignore[arg-type]
        return message

    def publish(self, event: Event) -> None:
        if self.events is not None:
            self.events.publish(event)

    def _notice(self, level: Level, message: str) -> None:
        log.log(logging.INFO if level == "info" else logging.WARNING, "%s", message)
        self.publish(Notice(time.time(), level, message))

    def _on_health(self, healthy: bool, message: str) -> None:
        if self.state == "starting":
            return  # start() raises NodeError with the same message: say it once
        if self.state in ("running", "degraded"):
            self.state = "running" if healthy else "degraded"
        # Recovery is told at the failure's level: it must not be quieter than the error it ends.
        self._notice("warning", message)

    def start(self) -> None:
        """Build the node's parts in order, each kept on self as it is made; when one fails, undo the
        ones already made (stop's tear-down) and raise NodeError saying why."""
        if os.geteuid() != 0 and not _has_net_admin():
            raise NodeError("needs CAP_NET_ADMIN: run as root")
        try:
            self._open_sealing()
            self._open_router()
            self._open_bucket()
            self._open_journal()
            self._open_device()
            self._configure_device()
            self._route()
            self._serve_metrics()
            ringer = self._open_doorbell()
            self._start_loops(ringer)
        except BaseException as error:
            for problem in self._tear_down():
                log.warning("clean-up after a failed start: %s", problem)
            self.state = "failed"
            if isinstance(error, NodeError):
                self.error = str(error)
                raise
            if isinstance(error, START_ERRORS):
                self.error = _describe(error)
                raise NodeError(self.error) from None
            raise
        self.started_at = time.time()
        self.state = "running"
        config = self.config
        assert self.bucket is not None
        self.publish(NodeStarted(
            self.started_at, self.address.compressed, str(config.network), config.interface, config.netns,
            config.bucket, self.bucket.endpoint, config.mtu, config.fastest_poll, config.slowest_poll,
        ))

    # The steps of start(), in order: each keeps what it makes on self, for _tear_down() to undo.
    def _open_sealing(self) -> None:
        """With --key-file and --peers: the sealer."""
        config = self.config
        if not (config.key_file and config.peers_file):
            return
        # Imported here: the cryptography a sealed node needs costs an unsealed one ~8 MiB for nothing.
        from agent.sealing import KeyFileError, PeersError, Sealer
        from agent.sealing.tunnel import SealedTunnel

        try:
            sealer = Sealer.from_files(config.key_file, config.peers_file, self.address, config.key_prefix)
        except (KeyFileError, PeersError) as error:
            raise NodeError(str(error)) from None
        self.sealed = SealedTunnel(sealer, report=lambda message: self._notice("warning", message))
        self.stats.peer_labels = metrics.PeerLabels(lambda: sealer.peers.table)

    def _open_router(self) -> None:
        """The routing table, checked against the peers file now rather than at the first packet."""
        config = self.config
        sealed = self.sealed
        try:
            self.router = Router(
                RouterSettings(self.address, config.network, self.address4, config.advertised, config.accept_routes,
                               config.exit_node),
                (lambda: sealed.sealer.peers.table) if sealed is not None else None,
            )
        except RouteError as error:
            raise NodeError(str(error)) from None

    def _open_bucket(self) -> None:
        """The bucket, and a check that this node may list its inbox."""
        config = self.config
        # With the default route through the tunnel, the agent's own requests carry the mark that keeps them
        # off it (through boto3: obstore cannot mark its connections).
        self.bucket = open_bucket(config.bucket, config.endpoint_url, config.region, self.guard, self._mark,
                                  s3_client=config.s3_client, clock=self.clock)
        try:
            self.bucket.check_access(wire.inbox(config.key_prefix, self.address))
        except StoreError as error:
            raise NodeError(f"bucket {config.bucket!r}: {error}") from None

    def _open_journal(self) -> None:
        """The file of delivered keys, one per inbox, under --state-dir (none when it is off)."""
        config = self.config
        if config.state_dir is None:
            return
        try:
            self._journal = Journal(Path(config.state_dir) / journal_name(config.bucket, config.key_prefix,
                                                                          self.address))
        except JournalError as error:
            raise NodeError(str(error)) from None

    def _open_device(self) -> None:
        self._tun = Tun(self.config.interface, self.config.netns)

    def _configure_device(self) -> None:
        """MTU, address, link up, route. Marked first: a configuration that fails half-way is undone too."""
        config = self.config
        self._configured = True
        netconf.configure(config.interface, self.address, config.network, config.mtu, config.netns, self.address4)

    def _open_doorbell(self) -> SqsDoorbell:
        """The ringer of other nodes' doorbells; with --wakeup sqs also this node's own doorbell."""
        config = self.config
        # Every node rings the nodes that wait on a doorbell; only with --wakeup sqs does it wait on one.
        ringer = make_doorbell(config.sqs_endpoint_url, config.region, self.guard, self.address, config.key_prefix,
                               mark=self._mark,
                               report=lambda message: self._notice("warning", message))
        if self.sealed is not None:
            from agent.sealing.bells import BellAuthenticator

            ringer.prover = BellAuthenticator(self.sealed.sealer)  # its bells prove their sender, and it asks as much
        if config.wakeup == "sqs":
            try:
                ringer.open()
                self.doorbell = ringer
                self.wakes_by = f"doorbell queue {ringer.name} ({'created' if ringer.created else 'found'})"
            except DoorbellError as error:
                self._notice("warning", f"no doorbell, polling instead: {error}")
                self.wakes_by = "polling its inbox (no doorbell)"
        return ringer

    def _start_loops(self, ringer: SqsDoorbell) -> None:
        """Ingress and egress, and the threads that run them."""
        config = self.config
        assert self.bucket is not None and self._tun is not None
        publish = self.publish if self.events is not None else None
        ingress = Ingress(
            self.bucket, self._tun.write, self.stats, self.heartbeat,
            IngressSettings(self.address, config.network, config.mtu, config.key_prefix, max_age=config.max_age,
                            skew=SKEW, router=self.router),
            doorbell=self.doorbell, publish=publish, recent=self.recent,
            opener=self.sealed.open if self.sealed else None,
            report=lambda message: self._notice("warning", message),
            journal=self._journal,
            clock=self.clock.now,
        )
        egress = Egress(
            self.bucket, self.stats, self.heartbeat,
            EgressSettings(self.address, config.network, config.mtu, config.key_prefix, router=self.router),
            doorbell=ringer, publish=publish, recent=self.recent,
            seal=self.sealed.seal if self.sealed else None,
            unrung=ingress.expect_unannounced if self.doorbell is not None else None,
            clock=self.clock.now,
        )
        self._egress = egress
        self._spawn("hoshino-read", functools.partial(egress.read_loop, self._tun.read))
        self._spawn("hoshino-send", egress.send_loop)
        for name, loop in ingress.loops().items():
            self._spawn(name, loop)
        if self.events is not None:
            self._spawn("hoshino-stats", self._sample_loop)

    @property
    def _mark(self) -> int | None:
        """The firewall mark of the agent's own connections: with --exit-node, so they skip the tunnel."""
        return gateway.MARK if self.config.exit_node else None

    def _route(self) -> None:
        """Forwarding, firewall table, routes and rules for the routing flags; each recorded to be undone."""
        config = self.config
        undo, netns, interface = self._routing, config.netns, config.interface
        if config.advertised:
            gateway.enable_forwarding(undo, netns, {prefix.version for prefix in config.advertised})
        if config.advertise_exit_node:
            ports = None
            if config.exit_tcp == "relay":
                relay = TcpRelay(netns, self.stats, warn=lambda message: self._notice("warning", message))
                undo.add("the TCP relay", relay.stop)  # after the table that sends to it: undo runs newest first
                ports = relay.start()
            self.uplink = gateway.become_exit_node(undo, netns, interface, config.exit_interface, ports)
        if config.accept_routes:
            self._follow_accepted()
        if config.exit_node:
            self._follow_exit()

    def _follow_peers(self, message: str, level: str) -> tuple[str, str]:
        """After a reload: the kernel's accepted routes and exit node follow the new peers file."""
        if self.config.accept_routes and (said := self._follow_accepted()):
            message = f"{message}; {said}"
        if self.config.exit_node is not None:
            said, exit_level = self._follow_exit()
            message, level = f"{message}; {said}", "warning" if "warning" in (level, exit_level) else level
        return message, level

    def _follow_accepted(self) -> str:
        """Route each prefix the peers file gives a peer through the device, and no other (--accept-routes):
        the ones gone are removed, the new ones added. Says what changed, or ''."""
        assert self.router is not None
        config = self.config
        with self._follow_lock:
            wanted = gateway.accepted_routes(self.router.routes())
            changes = []
            for prefix in [prefix for prefix in self._accepted if prefix not in wanted]:
                changes += [f"route {prefix} removed", *self._accepted.pop(prefix).run()]
            for prefix in wanted:
                if prefix not in self._accepted:
                    undo = self._accepted[prefix] = gateway.Undo()
                    try:
                        gateway.add_routes(undo, config.netns, config.interface, (prefix,))
                    except gateway.GatewayError as error:
                        if self.state == "starting":
                            raise  # start's tear-down undoes what was made
                        del self._accepted[prefix]
                        changes.append(f"route {prefix} not added: {error}")
                    else:
                        changes.append(f"route {prefix} added")
            return "; ".join(changes) if self.state != "starting" else ""

    def _follow_exit(self) -> tuple[str, Level]:
        """Make the kernel's default routes and rules match the exit node the peers file gives --exit-node:
        made when it is there, undone exactly when it is gone. Says what it did, and how loud to say it."""
        assert self.router is not None
        config = self.config
        with self._follow_lock:
            hop, was = self.router.exit_hop(), self._exit_hop
            self._exit_hop = hop
            if hop is not None and not self._exit_routing:
                try:
                    gateway.use_exit_node(self._exit_routing, config.netns, config.interface)
                except gateway.GatewayError as error:
                    if self.state == "starting":
                        raise  # start's tear-down undoes what was made
                    self._exit_hop = None
                    problems = self._exit_routing.run()
                    return "; ".join([f"exit node {hop} not used: {error}", *problems]), "warning"
                return f"exit node {hop}: default routes through {config.interface}", "info"
            if hop is None and self._exit_routing:
                problems = self._exit_routing.run()
                return "; ".join([f"exit node {config.exit_node} is no longer in the peers file with routes "
                                  f"0.0.0.0/0 and ::/0: its default routes and rules are removed, traffic leaves "
                                  f"by this machine's own", *problems]), "warning"
            if hop is None:
                return f"exit node {config.exit_node} is still not in the peers file: no default route through it", \
                    "warning"
            return (f"exit node {hop}" if hop == was else f"exit node {was} -> {hop}"), "info"

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        def guarded(stop: threading.Event) -> None:
            try:
                target(stop)
            except Exception as error:  # a bug must not end a loop silently: say so, and stop
                log.exception("%s failed", name)
                message = f"{name} failed: {type(error).__name__}: {error}"
                self._notice("error", f"{message}; the node stops")
                threading.Thread(target=self.stop, args=(message,), name="hoshino-stop", daemon=True).start()

        thread = threading.Thread(target=guarded, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve_metrics(self) -> None:
        listen = self.config.metrics_listen
        if listen is None:
            return
        host, port = listen
        sealed = self.sealed
        registry = metrics.node_registry(metrics.NodeCollector(
            self.stats, self.heartbeat,
            {"address": self.address.compressed, "interface": self.config.interface,
             "key_id": sealed.key_id if sealed is not None else ""},
            self.clock.offset,
            running=lambda: metrics.Running(self.state, "sqs" if self.doorbell is not None else "poll",
                                            self.started_at),
            peers=(lambda: sealed.sealer.peers.table.routing().values()) if sealed is not None else None,
        ))
        if self.sealed is not None:
            registry.register(self.sealed.collector())
        try:
            with netconf.inside(self.config.netns):
                self._metrics_server = metrics.serve(registry, host, port)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise NodeError(
                    f"metrics port {port} is already in use: pass --metrics-listen with another port, or off"
                ) from None
            raise NodeError(f"cannot listen for metrics on [{host}]:{port}: {error.strerror}") from None

    def snapshot(self) -> StatsSampled:
        """Every counter now, with the heartbeat and the cost so far."""
        data = self.stats.copy()
        errors: dict[str, int] = {}
        for (service, _operation, kind), count in data["errors"].items():
            if service == "s3":
                errors[kind] = errors.get(kind, 0) + count
        requests = data["requests"]
        hours = (time.time() - self.started_at) / 3600 if self.started_at else 0.0
        return StatsSampled(
            time=time.time(), state=self.state, interval=self.heartbeat.interval, manual=self.heartbeat.manual,
            packets_out=data["packets_out"], bytes_out=data["bytes_out"],
            packets_in=data["packets_in"], bytes_in=data["bytes_in"],
            s3_ops={op: n for (service, op), n in requests.items() if service == "s3"},
            s3_errors=errors, s3_latency=self.stats.latency_medians(),
            dropped=data["dropped"], ignored=data["ignored"], missed_beats=self.heartbeat.missed,
            events_dropped=self.events.dropped if self.events else 0,
            waiting_egress=self._egress.waiting if self._egress else 0,
            requests={f"{service}.{op}": n for (service, op), n in requests.items()},
            dollars={f"{service}.{op}": n for (service, op), n in data["dollars"].items()},
            nat_dollars=self.prices.nat_gateway(hours, data["bytes_in"] + data["bytes_out"]),
            wakeup="sqs" if self.doorbell is not None else "poll",
            pace_rate=data["pace_rate"], delivery_backlog=data["delivery_backlog"],
            routes=self._route_sample(data), exit_nat_dollars=self.prices.nat_gateway(0.0, self._exit_bytes(data)),
            clock_offset=self.clock.offset(),
        )

    def _route_sample(self, data: dict[str, Any]) -> dict[str, tuple[str, int, int]]:
        """Bytes each way per route, with the node each leads to ('each node' for the network's own)."""
        hops = {str(prefix): hop.compressed for prefix, hop in self.router.routes()} if self.router else {}
        hops.update({str(self.config.network): "each node", str(ip.IPV4_NETWORK): "each node"})
        totals = data["route_bytes"]
        return {label: (hops.get(label, "this node"), totals.get((label, "out"), 0), totals.get((label, "in"), 0))
                for label in sorted({label for label, _ in totals})}

    def _exit_bytes(self, data: dict[str, Any]) -> int:
        """Bytes carried by the default routes: what went through an exit node (or this one, being it)."""
        defaults = {str(prefix) for prefix in ip.DEFAULT_ROUTES}
        return sum(count for (label, _), count in data["route_bytes"].items() if label in defaults)

    def _sample_loop(self, stop: threading.Event) -> None:
        while not stop.wait(SNAPSHOT_PERIOD):
            self.publish(self.snapshot())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the node has stopped; True if it has."""
        return self._stopped.wait(timeout)

    def stop(self, error: str = "") -> None:
        """Stop the loops, remove the route, address and device, and close the metrics listener."""
        with self._lock:
            if self._stopped.is_set():
                return
            problems = self._tear_down()
            self.error = error or self.error  # a start that failed said why: a stop after it keeps that
            self.state = "failed" if self.error else "stopped"
            for problem in problems:
                self._notice("warning", f"clean-up: {problem}")
            if self._threads:
                self.publish(self.snapshot())
            self.publish(NodeStopped(time.time(), error))
            self._stopped.set()

    def _tear_down(self) -> list[str]:
        """Undo whatever start() made, newest first, each step on its own: one that fails does not leave the
        others behind. Safe to run again, and on a node that never started. Returns what could not be undone."""
        problems: list[str] = []

        def attempt(what: str, step: Callable[[], object]) -> None:
            try:
                step()
            except Exception as error:
                problems.append(f"{what}: {type(error).__name__}: {error}")

        first = not self._stop.is_set()
        self._stop.set()
        tun, doorbell, server = self._tun, self.doorbell, self._metrics_server
        if tun is not None:
            attempt("waking the device reader", tun.stop_reading)
        if doorbell is not None and first:
            attempt("closing the doorbell", doorbell.close)  # wakes the receiver from its long poll
        for thread in self._threads:
            attempt(f"joining {thread.name}", functools.partial(thread.join, timeout=15))
            if thread.is_alive():
                problems.append(f"{thread.name} did not stop within 15 s")
        if server is not None:
            attempt("closing the metrics listener", server.shutdown)
            attempt("closing the metrics listener", server.server_close)
            self._metrics_server = None
        with self._follow_lock:
            problems += self._exit_routing.run()
            for undo in self._accepted.values():
                problems += undo.run()
            self._accepted.clear()
        problems += self._routing.run()  # rules and routes name the device: before it goes
        if self._configured:
            attempt("removing the route and address", lambda: problems.extend(netconf.deconfigure(
                self.config.interface, self.address, self.config.network, self.config.netns, self.address4)))
            self._configured = False
        if tun is not None:
            attempt("closing the device", tun.close)
            self._tun = None
        if self._journal is not None:
            attempt("closing the journal", self._journal.close)
            self._journal = None
        return problems


def _describe(error: BaseException) -> str:
    """One line for an error start() did not word itself."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}{': ' + str(error.filename) if error.filename else ''}"
    return str(error) or type(error).__name__


def _has_net_admin() -> bool:
    """True if this process holds CAP_NET_ADMIN without being root."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 12))
    return False
