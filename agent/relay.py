"""The exit node's TCP relay: peers' TCP to the internet ends at the exit node and is carried on by a
connection of the exit node's own, as a split-TCP performance-enhancing proxy does over a satellite
link (RFC 3135).

Why: beyond the exit node the path's MTU is the internet's 1,500 bytes, and a sender's window of a few
dozen such packets over the tunnel's round trip (hundreds of milliseconds, most of it waiting for PUTs,
bells and GETs) moves a few hundred KB a second, whatever S3 could carry (docs/performance.md, "Through an
exit node"). Ended here, the tunnel's leg is a TCP connection between two nodes, with the tunnel's MTU
(53,049 bytes), and the internet's leg runs at the uplink's round trip.

The exit node's nftables table redirects TCP that comes from the tunnel and would leave by the uplink to
this relay's listeners (agent.gateway); the relay reads where each connection was going from conntrack
(SO_ORIGINAL_DST), connects there from the exit node, and copies bytes both ways, half-closes included.
A destination that refuses or cannot be reached resets the peer's connection. That connection was open
already (the kernel accepts it before the relay can try the destination), so the peer sees a reset where
it would have seen a refusal: an error at once either way, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable

from agent.metrics import Stats
from agent.netconf import NetconfError, inside

SO_ORIGINAL_DST = 80
"""getsockopt: where a redirected connection was going (IPv4 at SOL_IP, IPv6 at SOL_IPV6)."""
CONNECT_TIMEOUT = 30.0
"""How long a connection out to the destination may take before the peer's is reset."""
MAX_CONNECTIONS = 4096
"""Connections relayed at once, at most: more are reset (each holds two sockets)."""
CHUNK = 256 << 10
"""Bytes read from one side at a time."""
KEEPALIVE = (300, 30, 4)
"""TCP keepalive on both sides of a relayed connection (idle seconds, seconds between probes, probes): a
side that vanished (a peer that stopped, a destination gone) ends the connection within ~7 minutes,
rather than holding two sockets forever. An idle connection that still answers is kept, as long as
it lasts."""


def original_destination(connection: socket.socket) -> tuple[str, int]:
    """Where a connection redirected to the relay was going, from conntrack; OSError if it was not redirected."""
    if connection.family == socket.AF_INET:
        raw = connection.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, packed = struct.unpack_from("!2xH4s", raw)
        return str(ipaddress.IPv4Address(packed)), port
    raw = connection.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
    port, packed = struct.unpack_from("!2xH4x16s", raw)
    return str(ipaddress.IPv6Address(packed)), port


def keep_alive(connection: socket.socket) -> None:
    """Probe the other end after KEEPALIVE's idle time, and give up on it after its probes."""
    idle, interval, probes = KEEPALIVE
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def reset(connection: socket.socket) -> None:
    """Close with a reset rather than a FIN: the far end learns the connection failed."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class TcpRelay:
    """Listens in the exit node's namespace, one socket per family, and relays what is redirected to it."""

    def __init__(self, namespace: str | None, stats: Stats, *, warn: Callable[[str], None] | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.namespace = namespace
        self.stats = stats
        self.warn = warn
        self.max_connections = max_connections
        self._listeners: list[socket.socket] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def ports(self) -> dict[int, int]:
        """IP version -> the port its listener took (the nftables redirect's target)."""
        return {4 if listener.family == socket.AF_INET else 6: listener.getsockname()[1]
                for listener in self._listeners}

    def start(self) -> dict[int, int]:
        """Listen on a free port per family in the namespace, start relaying; return the ports."""
        with inside(self.namespace):
            for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                listener = socket.socket(family, socket.SOCK_STREAM)
                self._listeners.append(listener)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind((anywhere, 0))
                listener.listen(1024)
                listener.setblocking(False)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="hoshino-relay", daemon=True)
        self._thread.start()
        ready.wait()
        if not self._thread.is_alive():
            raise NetconfError("the exit node's TCP relay could not start: see the log above")
        return self.ports

    def stop(self) -> None:
        """Stop accepting, reset what is still relayed, close the listeners."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    def _run(self, ready: threading.Event) -> None:
        # The thread stays in the namespace: the connections out are made there, from the exit node.
        try:
            with inside(self.namespace):
                asyncio.run(self._serve(ready))
        finally:
            ready.set()  # start() must not wait for a loop that failed before it ran

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        accepting = [asyncio.create_task(self._accept(listener)) for listener in self._listeners]
        ready.set()
        await self._stopped.wait()
        for task in [*accepting, *self._connections]:
            task.cancel()
        await asyncio.gather(*accepting, *self._connections, return_exceptions=True)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = await loop.sock_accept(listener)
            except OSError as error:  # out of file descriptors, say: the next accept may do
                self._warn(f"TCP relay: accepting failed: {error}")
                await asyncio.sleep(0.1)
                continue
            connection.setblocking(False)
            if len(self._connections) >= self.max_connections:
                self.stats.relayed("refused")
                reset(connection)
                continue
            task = asyncio.create_task(self._relay(connection))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _relay(self, connection: socket.socket) -> None:
        """Connect to where the connection was going and copy both ways until both sides are done."""
        loop = asyncio.get_running_loop()
        try:
            destination = original_destination(connection)
        except OSError:  # not redirected: reached the listener directly, which nobody should
            self.stats.relayed("not_redirected")
            reset(connection)
            return
        upstream = socket.socket(connection.family, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, destination), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            self.stats.relayed("unreachable")
            reset(connection)
            upstream.close()
            return
        except asyncio.CancelledError:
            reset(connection)
            upstream.close()
            raise
        self.stats.relayed("relayed")
        self.stats.relay_open(1)
        for side in (connection, upstream):
            side.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keep_alive(side)
        pumps = [asyncio.create_task(_pump(connection, upstream)), asyncio.create_task(_pump(upstream, connection))]
        done = False
        try:
            await asyncio.gather(*pumps)
            done = True
        except OSError:
            pass  # a side failed: both ends learn it by a reset, below
        finally:  # also when the relay stops (cancelled), which then goes on up
            self.stats.relay_open(-1)
            if done:
                connection.close()
                upstream.close()
            else:
                for pump in pumps:
                    pump.cancel()
                reset(connection)
                reset(upstream)

    def _warn(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)


async def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy from source to sink until source's end is closed; then close sink's sending half."""
    loop = asyncio.get_running_loop()
    while data := await loop.sock_recv(source, CHUNK):
        await loop.sock_sendall(sink, data)
    with contextlib.suppress(OSError):  # the sink may be gone already: its own pump says so
        sink.shutdown(socket.SHUT_WR)
