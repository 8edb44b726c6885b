"""An "internet" for an exit node: a namespace on documentation addresses with an HTTP server, linked to
one namespace of the lab by a veth that becomes that namespace's uplink and default route."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent.lab.links import address, default_route, veth
from agent.lab.namespaces import Namespace
from agent.netconf import inside

SERVER4, SERVER6 = "198.51.100.1", "2001:db8:100::1"
UPLINK4, UPLINK6 = "203.0.113.2", "2001:db8:200::2"
"""The exit side of the link: what the server sees of a masqueraded client."""
GATEWAY4, GATEWAY6 = "203.0.113.1", "2001:db8:200::1"
PORT = 8080
UPLINK = "up0"


class Internet:
    """The namespace, its link to `exit_namespace` and an HTTP server that serves `body` at any path
    (its first `small` bytes at /small) and records each client's address; congestion: the TCP congestion
    control it sends with (default: the system's)."""

    def __init__(self, exit_namespace: str, body: bytes | None = None, small: int = 2 << 20,
                 congestion: str | None = None) -> None:
        self.body = body if body is not None else os.urandom(20 << 20)
        self.small = small
        self.congestion = congestion
        self.clients: list[str] = []
        self._servers: list[ThreadingHTTPServer] = []
        self.namespace = Namespace("net")
        try:
            veth(exit_namespace, UPLINK, self.namespace.name, "eth0")
            address(exit_namespace, UPLINK, f"{UPLINK4}/24", f"{UPLINK6}/64")
            address(self.namespace.name, "eth0", f"{GATEWAY4}/24", f"{GATEWAY6}/64")
            address(self.namespace.name, "lo", f"{SERVER4}/32", f"{SERVER6}/128")
            default_route(exit_namespace, GATEWAY4, GATEWAY6)
            self._serve()
        except BaseException:
            self.close()
            raise

    def url(self, family: int, path: str = "/file") -> str:
        host = SERVER4 if family == 4 else f"[{SERVER6}]"
        return f"http://{host}:{PORT}{path}"

    def _serve(self) -> None:
        internet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                internet.clients.append(self.client_address[0])
                if internet.congestion:  # per socket: a namespace's own default may not be settable
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, internet.congestion.encode())
                body = internet.body[:internet.small] if self.path == "/small" else internet.body
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        with inside(self.namespace.name):
            self._servers = [ThreadingHTTPServer((SERVER4, PORT), Handler), Server6((SERVER6, PORT), Handler)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="lab-internet", daemon=True).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.namespace.close()
