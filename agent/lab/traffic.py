"""Traffic for the lab: ping, TCP and UDP from inside a namespace, and a UDP echo service."""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import threading
import time
import urllib.request

from agent.netconf import inside

UDP_ECHO_PORT = 7777
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129


def ping_once(destination: ipaddress.IPv6Address, ident: int, seq: int, timeout: float = 5.0) -> float | None:
    """One ICMPv6 echo round trip from the calling thread's namespace; seconds, or None if lost."""
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        payload = b"hoshino " + struct.pack("!d", time.time())
        # The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
        sock.sendto(struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + payload,
                    (destination.compressed, 0))
        sent = time.monotonic()
        deadline = sent + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                break
            data, _ = sock.recvfrom(65535)
            if len(data) >= 8:
                kind, _code, _sum, got_ident, got_seq = struct.unpack("!BBHHH", data[:8])
                if kind == ICMP6_ECHO_REPLY and got_ident == ident and got_seq == seq:
                    return time.monotonic() - sent
    return None


def udp_round_trip(destination: ipaddress.IPv6Address, payload: bytes, timeout: float = 5.0) -> bytes | None:
    """Send a datagram to the echo service and wait for it to come back."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (destination.compressed, UDP_ECHO_PORT))
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
        return data


def fetch_metrics(destination: ipaddress.IPv6Address, port: int = 8081, timeout: float = 10.0) -> str:
    """GET the node's metrics page over TCP, as the original experiment did with curl."""
    with urllib.request.urlopen(f"http://[{destination.compressed}]:{port}/metrics", timeout=timeout) as page:
        return str(page.read().decode())


class Service:
    """A daemon thread that runs inside a namespace (None: this thread's) until stop()."""

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._enter, name=type(self).__name__, daemon=True)
        self.error: str = ""

    def start(self) -> Service:
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Tell the service to stop after what it is doing now."""
        self._stop.set()

    def stop(self, timeout: float = 10) -> None:
        """Stop and wait up to timeout seconds for the thread to end."""
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _enter(self) -> None:
        try:
            with inside(self.namespace):
                self.run()
        except Exception as error:  # reported on the object: a lab service must not kill the demo
            self.error = f"{type(error).__name__}: {error}"

    def run(self) -> None:
        raise NotImplementedError


class UdpEcho(Service):
    """Sends every datagram on UDP_ECHO_PORT back to where it came from."""

    def __init__(self, namespace: str, address: ipaddress.IPv6Address) -> None:
        super().__init__(namespace)
        self.address = address
        self.echoed = 0
        self._bound = threading.Event()

    def start(self) -> UdpEcho:
        super().start()
        self._bound.wait(5)
        return self

    def run(self) -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind((self.address.compressed, UDP_ECHO_PORT))
            self._bound.set()
            while not self._stop.is_set():
                ready, _, _ = select.select([sock], [], [], 0.2)
                if ready:
                    data, sender = sock.recvfrom(65535)
                    sock.sendto(data, sender)
                    self.echoed += 1


def multicast_once(interface: str, payload: bytes, group: str = "ff02::fb", port: int = 5353) -> None:
    """One link-local multicast datagram out of a device, as mDNS sends: the agent must ignore it."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, (group, port, 0, socket.if_nametoindex(interface)))


class DemoTraffic(Service):
    """A gentle, varied stream: a ping each second, UDP every two, a TCP metrics fetch every five,
    and now and then a multicast datagram that the agent ignores, as real hosts send them."""

    def __init__(self, namespace: str, peer: ipaddress.IPv6Address, interface: str = "hoshino0") -> None:
        super().__init__(namespace)
        self.peer = peer
        self.interface = interface
        self.pings = 0
        self.replies = 0

    def start(self) -> DemoTraffic:
        super().start()
        return self

    def run(self) -> None:
        ident = os.getpid() & 0xFFFF
        tick = 0
        while not self._stop.wait(1.0):
            tick += 1
            self.pings += 1
            if ping_once(self.peer, ident, self.pings, timeout=3.0) is not None:
                self.replies += 1
            if tick % 2 == 0:
                udp_round_trip(self.peer, f"hoshino demo {tick}".encode(), timeout=3.0)
            if tick % 10 == 3:
                multicast_once(self.interface, b"hoshino demo: who is there?")
            if tick % 5 == 0:
                try:
                    fetch_metrics(self.peer, timeout=5.0)
                except OSError as error:
                    self.error = f"metrics fetch: {error}"
