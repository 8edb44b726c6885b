"""Links between namespaces a test made: a veth pair, addresses and routes, for a LAN or an "internet".

Only documentation addresses go on them (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), and nothing links them to the host's network. A veth goes with its namespace.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading


def ip_command(namespace: str, *args: str) -> None:
    """Run `ip -n NAMESPACE ARGS...`; raise with its error output when it fails."""
    done = subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode:
        raise RuntimeError(f"ip -n {namespace} {' '.join(args)}: {done.stderr.strip()}")


def veth(left: str, left_name: str, right: str, right_name: str) -> None:
    """A veth pair between two namespaces, both ends up."""
    ip_command(left, "link", "add", left_name, "type", "veth", "peer", "name", right_name, "netns", right)
    ip_command(left, "link", "set", left_name, "up")
    ip_command(right, "link", "set", right_name, "up")


def address(namespace: str, device: str, *cidrs: str) -> None:
    """Addresses on a device; IPv6 ones without duplicate address detection, so they are usable at once."""
    for cidr in cidrs:
        ip_command(namespace, "addr", "add", cidr, "dev", device, *(("nodad",) if ":" in cidr else ()))


def default_route(namespace: str, *gateways: str) -> None:
    """Default routes of each family through these gateways."""
    for gateway in gateways:
        ip_command(namespace, "-6" if ":" in gateway else "-4", "route", "add", "default", "via", gateway)


class Relay:
    """A TCP relay: listens on an address inside a namespace, forwards each connection to a port of this
    namespace's 127.0.0.1. It puts the lab's S3 server behind a veth, for an agent run inside a namespace."""

    def __init__(self, namespace: str, host: str, upstream_port: int) -> None:
        from agent.netconf import inside

        self.upstream_port = upstream_port
        self.connections = 0
        with inside(namespace):
            self._listener = socket.create_server((host, 0))
        self.endpoint_url = f"http://{host}:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, name="lab-relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                inner, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            try:
                outer = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                inner.close()
                continue
            outer.settimeout(None)
            for source, target in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self._listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
