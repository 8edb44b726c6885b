"""A fault-injecting HTTP proxy between boto3 clients and the local S3 server, for tests.

The proxy forwards every request to the upstream server (moto's, plain HTTP on 127.0.0.1) and
relays the answer, unless a fault the test switched on says otherwise: answer 503 SlowDown or 500
InternalError without forwarding, reset the connection, stall, cut the response short, or reset
every request until cleared (an outage). Every request is recorded, so a test can count requests and rates per
operation in a time window.

    with FaultProxy(s3_server.endpoint_url) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.endpoint_url, ...)
        proxy.slowdown(ops=Op.PUT_OBJECT, count=3)      # the next three PUTs get 503 SlowDown
        proxy.stall(seconds=2, method="GET", probability=0.1)
        ...
        proxy.count(Op.PUT_OBJECT, since=started)

Written on http.server and http.client, as the faults need the client socket in hand (an RST, a
body shorter than its Content-Length). Toxiproxy has such faults but is a Go server we cannot
install here; mitmproxy would bring a TLS stack and an asyncio core for what is a few hundred lines.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import logging
import random
import secrets
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, TypedDict, Unpack

log = logging.getLogger(__name__)

# Headers that belong to one hop (RFC 9110 7.6.1), not to the request or answer carried through.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "expect", "content-length",
}
LIST_PARAMS = {"list-type", "prefix", "max-keys", "start-after", "delimiter", "continuation-token",
               "encoding-type", "fetch-owner", "marker"}
UNCHANGING_PARAMS = {"x-id", "AWSAccessKeyId", "Signature", "Expires"}  # with X-Amz-*: signing, not operation
ANY = "*"  # as the fault filter of count() and rate(): requests with any fault or none


class Op(enum.StrEnum):
    """The operation a request is, as far as method and path tell (path-style S3, SQS)."""

    GET_OBJECT = "get_object"
    PUT_OBJECT = "put_object"
    HEAD_OBJECT = "head_object"
    DELETE_OBJECT = "delete_object"
    LIST_OBJECTS = "list_objects"
    DELETE_OBJECTS = "delete_objects"
    HEAD_BUCKET = "head_bucket"
    CREATE_BUCKET = "create_bucket"
    LIST_BUCKETS = "list_buckets"
    SQS = "sqs"
    OTHER = "other"


class Kind(enum.StrEnum):
    """The faults the proxy can inject."""

    SLOWDOWN = "slowdown"  # 503 SlowDown, not forwarded
    ERROR500 = "error500"  # 500 InternalError, not forwarded
    RESET = "reset"  # the client's connection reset (RST), no answer, not forwarded
    STALL = "stall"  # forwarded after a wait
    TRUNCATE = "truncate"  # forwarded; the answer cut short (full Content-Length), then the connection closed
    OUTAGE = "outage"  # every request reset, not forwarded, until cleared


@dataclass(frozen=True, slots=True)
class Request:
    """What a fault filter sees of a request."""

    method: str
    path: str
    query: str
    operation: Op
    headers: dict[str, str]

    @property
    def params(self) -> dict[str, list[str]]:
        """The query string, parsed (keys without a value included)."""
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)


@dataclass(frozen=True, slots=True)
class Record:
    """One request the proxy saw and what became of it; status is None when nothing was answered."""

    time: float  # time.monotonic() when the request had been read
    method: str
    path: str
    query: str
    operation: Op
    fault: Kind | None
    status: int | None


@dataclass(eq=False)
class Fault:
    """A fault switched on: which requests it takes, how often, and how many it has taken."""

    kind: Kind
    ops: frozenset[Op] | None = None
    methods: frozenset[str] | None = None
    where: Callable[[Request], bool] | None = None
    probability: float = 1.0
    remaining: int | None = None  # None: every matching request; N: the next N it applies to
    seconds: float = 2.0  # for stall
    fraction: float = 0.5  # for truncate: the share of the body (or status line) sent
    applied: int = 0

    def matches(self, request: Request) -> bool:
        """Whether the request passes the filter (chance and count aside)."""
        if self.ops is not None and request.operation not in self.ops:
            return False
        if self.methods is not None and request.method not in self.methods:
            return False
        return self.where is None or self.where(request)


class Filters(TypedDict, total=False):
    """Which requests a fault takes, and how many: the keyword arguments of FaultProxy.inject()."""

    ops: Op | str | Collection[Op | str] | None
    method: str | Collection[str] | None
    where: Callable[[Request], bool] | None
    probability: float
    count: int | None


def classify(method: str, path: str, query: str, headers: dict[str, str]) -> Op:
    """The operation of a request to moto's server, from its method, path and signing scope."""
    target = headers.get("x-amz-target", "")
    scope = headers.get("authorization", "").partition("Credential=")[2].split(",")[0].split("/")
    if target.startswith("AmazonSQS") or (len(scope) > 3 and scope[3] == "sqs"):
        return Op.SQS
    bucket, _, key = path.lstrip("/").partition("/")
    # Signing (presigned URLs), response overrides and x-id do not change what a request does.
    params = {
        name for name in urllib.parse.parse_qs(query, keep_blank_values=True)
        if not name.lower().startswith(("x-amz-", "response-")) and name not in UNCHANGING_PARAMS
    }
    if not bucket:
        return Op.LIST_BUCKETS if method == "GET" else Op.OTHER
    if key:
        by_method = {"GET": Op.GET_OBJECT, "PUT": Op.PUT_OBJECT, "HEAD": Op.HEAD_OBJECT, "DELETE": Op.DELETE_OBJECT}
        return by_method.get(method, Op.OTHER) if params <= {"versionId"} else Op.OTHER
    if method == "POST" and params == {"delete"}:
        return Op.DELETE_OBJECTS
    if method == "GET" and params <= LIST_PARAMS:
        return Op.LIST_OBJECTS
    if not params:
        return {"HEAD": Op.HEAD_BUCKET, "PUT": Op.CREATE_BUCKET}.get(method, Op.OTHER)
    return Op.OTHER


def error_answer(kind: Kind, request: Request) -> tuple[int, str, dict[str, str], bytes]:
    """(status, reason, headers, body) of the error a real service sends for this fault."""
    request_id = secrets.token_hex(8).upper()
    if request.operation is Op.SQS:
        # SQS speaks JSON (awsJson1_0) to current boto3; the code is the shape after '#'.
        code, status = ("RequestThrottled", 400) if kind is Kind.SLOWDOWN else ("InternalFailure", 500)
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} (injected)"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
        return status, http.HTTPStatus(status).phrase, headers, body
    if kind is Kind.SLOWDOWN:
        status, code, message = 503, "SlowDown", "Please reduce your request rate."
    else:
        status, code, message = 500, "InternalError", "We encountered an internal error. Please try again."
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id}
    return status, http.HTTPStatus(status).phrase, headers, body


class _Server(socketserver.ThreadingTCPServer):
    """A threaded listener that knows its connections, so stop() can close them and join threads."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False  # we join our own threads in stop()

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.aborting: set[socket.socket] = set()  # to be closed with RST, not FIN
        self.upstreams: set[http.client.HTTPConnection] = set()
        self.accepted = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True,
            name=f"fault-proxy-{client_address[1]}",
        )
        with self.lock:
            self.connections.add(request)
            self.threads.add(thread)
            self.accepted += 1
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
            aborting = request in self.aborting
            self.aborting.discard(request)
        if aborting:
            # A shutdown() would send FIN first; with SO_LINGER 0, close() alone sends RST.
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fault proxy: connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One client connection: read requests, apply the fault or forward, answer; keep-alive."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is dropped after this long
    server: _Server
    upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fault proxy: " + format, *args)

    def finish(self) -> None:
        self.drop_upstream()
        super().finish()

    def drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            with self.server.lock:
                self.server.upstreams.discard(self.upstream)
            self.upstream = None

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_request(self) -> None:
        """Every method comes here (do_GET, do_PUT, ... are this)."""
        body = self.read_body()
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, path, query, classify(self.command, path, query, headers), headers)
        arrived = time.monotonic()
        fault = self.server.proxy._choose(request)
        kind = fault.kind if fault else None

        def record(status: int | None) -> None:
            self.server.proxy._record(Record(arrived, self.command, path, query, request.operation, kind, status))

        if kind in (Kind.RESET, Kind.OUTAGE):
            record(None)
            self.abort()
            return
        if kind in (Kind.SLOWDOWN, Kind.ERROR500):
            status, reason, error_headers, error_body = error_answer(kind, request)
            record(status)
            self.answer(status, reason, list(error_headers.items()), error_body)
            return
        if fault is not None and kind is Kind.STALL and self.server.proxy._stopping.wait(fault.seconds):
            record(None)
            self.abort()  # stopping: nobody waits for this answer any more
            return
        try:
            response, response_body = self.forward(body)
        except OSError:
            log.debug("fault proxy: upstream failed for %s %s", self.command, self.path, exc_info=True)
            record(None)
            self.abort()  # as the unreachable server would look to the client
            return
        record(response.status)
        self.answer(response.status, response.reason, response.getheaders(), response_body,
                    cut=fault.fraction if fault is not None and kind is Kind.TRUNCATE else None)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_request

    def forward(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        """Send the request upstream on this connection's own upstream connection; read the answer."""
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            reused = self.upstream is not None
            if self.upstream is None:
                proxy = self.server.proxy
                self.upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                           timeout=proxy.upstream_timeout)
                with self.server.lock:
                    self.server.upstreams.add(self.upstream)
            try:
                # The Host header goes as the client sent it: it is part of what SigV4 signed.
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    self.upstream.putheader(name, value)
                self.upstream.endheaders(body or None)
                response = self.upstream.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # An idle connection the upstream closed: try once more on a new one.
                self.drop_upstream()
                if not reused or attempt == 2:
                    raise
            except (OSError, http.client.HTTPException) as error:
                self.drop_upstream()
                raise OSError(f"upstream: {error}") from error
        raise AssertionError("unreachable")

    def answer(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
               cut: float | None = None) -> None:
        """Write an answer; with cut, only that share of its body (of its status line if it has no body)."""
        length = str(len(body))
        lines = [f"HTTP/1.1 {status} {reason}"]
        for name, value in headers:
            if name.lower() == "content-length" and self.command == "HEAD":
                length = value  # a HEAD answer declares the object's length and carries no body
            elif name.lower() not in HOP_BY_HOP:
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command == "HEAD" or status in (204, 304):
            body = b""
        if cut is not None:
            self.close_connection = True
            if body:
                body = body[: int(len(body) * cut)]
            else:
                # Cut within the status line: http.client takes a header block cut at a line's end
                # for a complete one, and the client would see no fault at all.
                head = head[: int(len(lines[0]) * cut)]
        try:
            self.wfile.write(head + body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client left (it timed out during a stall, say)

    def abort(self) -> None:
        """Close this connection with RST once the handler returns, answering nothing."""
        self.close_connection = True
        with self.server.lock:
            self.server.aborting.add(self.connection)


class FaultProxy:
    """An HTTP proxy on a free port of 127.0.0.1 that forwards to upstream_url and injects faults.

    Faults are switched on and off from any thread while the proxy runs. A request gets at most
    one fault: an outage first, then the first fault switched on whose filter, chance and count
    take it. Each fault method returns its Fault (see Fault.applied); remove() or clear() ends it.
    """

    def __init__(self, upstream_url: str, *, seed: int | None = None, upstream_timeout: float = 60) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be a plain http:// URL with a host, not {upstream_url!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.upstream_timeout = upstream_timeout
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._outage: Fault | None = None
        self._records: list[Record] = []
        self._changed = threading.Condition()  # guards faults and records; notified on each record
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._accepted = 0
        self.endpoint_url = ""

    # -- life --

    def start(self) -> FaultProxy:
        """Listen on a free port of 127.0.0.1 and serve; endpoint_url says where."""
        if self._server is not None:
            raise RuntimeError("the fault proxy is already running")
        self._stopping.clear()
        self._server = _Server(self)
        port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._serving = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                         name=f"fault-proxy-{port}", daemon=True)
        self._serving.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; join every thread the proxy started."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # ends stalls at once
        server.shutdown()
        server.server_close()
        if self._serving is not None:
            self._serving.join()
        with server.lock:
            connections, threads = list(server.connections), list(server.threads)
            upstreams = [upstream.sock for upstream in server.upstreams if upstream.sock is not None]
        for connection in [*connections, *upstreams]:
            with contextlib.suppress(OSError):  # wakes a thread reading a request or an answer
                connection.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join()
        self._accepted = server.accepted

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def accepted(self) -> int:
        """Client connections accepted since start() (kept-alive connections count once)."""
        return self._server.accepted if self._server is not None else self._accepted

    # -- faults --

    def inject(
        self,
        kind: Kind | str,
        *,
        ops: Op | str | Collection[Op | str] | None = None,
        method: str | Collection[str] | None = None,
        where: Callable[[Request], bool] | None = None,
        probability: float = 1.0,
        count: int | None = None,
        seconds: float = 2.0,
        fraction: float = 0.5,
    ) -> Fault:
        """Switch a fault on for the requests that match ops, method and where (all of them when
        none is given), each with the given probability, for every such request or the next count."""
        kind = Kind(kind)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {probability}")
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction must be within 0..1 (1 excluded), not {fraction}")
        fault = Fault(
            kind,
            ops=None if ops is None else frozenset(Op(op) for op in ([ops] if isinstance(ops, str) else ops)),
            methods=None if method is None else frozenset(
                m.upper() for m in ([method] if isinstance(method, str) else method)),
            where=where, probability=probability, remaining=count, seconds=seconds, fraction=fraction,
        )
        with self._changed:
            if kind is Kind.OUTAGE:
                self._outage = fault
            else:
                self._faults.append(fault)
        return fault

    def slowdown(self, **filters: Unpack[Filters]) -> Fault:
        """Answer 503 SlowDown (SQS: 400 RequestThrottled) without forwarding. Filters as inject()."""
        return self.inject(Kind.SLOWDOWN, **filters)

    def error500(self, **filters: Unpack[Filters]) -> Fault:
        """Answer 500 InternalError (SQS: InternalFailure) without forwarding. Filters as inject()."""
        return self.inject(Kind.ERROR500, **filters)

    def reset(self, **filters: Unpack[Filters]) -> Fault:
        """Reset the client's connection (RST) without answering or forwarding. Filters as inject()."""
        return self.inject(Kind.RESET, **filters)

    def stall(self, seconds: float = 2.0, **filters: Unpack[Filters]) -> Fault:
        """Wait seconds, then forward and answer as usual. Filters as inject()."""
        return self.inject(Kind.STALL, seconds=seconds, **filters)

    def truncate(self, fraction: float = 0.5, **filters: Unpack[Filters]) -> Fault:
        """Forward; answer with the full Content-Length but only fraction of the body (of the status
        line when there is no body), then close the connection. Filters as inject()."""
        return self.inject(Kind.TRUNCATE, fraction=fraction, **filters)

    def outage(self) -> Fault:
        """Reset every request's connection, forwarding nothing, until clear()."""
        return self.inject(Kind.OUTAGE)

    def remove(self, fault: Fault) -> None:
        """Switch one fault off (an outage included)."""
        with self._changed:
            if fault is self._outage:
                self._outage = None
            elif fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        """Switch every fault off, the outage included: from now on, everything is forwarded."""
        with self._changed:
            self._faults.clear()
            self._outage = None

    def _choose(self, request: Request) -> Fault | None:
        with self._changed:
            if self._outage is not None:
                self._outage.applied += 1
                return self._outage
            for fault in self._faults:
                if fault.matches(request) and (fault.probability >= 1.0 or self._random.random() < fault.probability):
                    fault.applied += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # -- counting --

    def _record(self, record: Record) -> None:
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def records(
        self,
        operation: Op | str | None = None,
        *,
        fault: Kind | str | None = ANY,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Record]:
        """The requests seen, in the order they were done with, that match every filter given:
        the operation, the fault (None: passed through unharmed; ANY, the default: any), and
        arrival time (time.monotonic()) within [since, until)."""
        with self._changed:
            records = list(self._records)
        return [
            r for r in records
            if (operation is None or r.operation == operation)
            and (fault == ANY or r.fault == (None if fault is None else Kind(fault)))
            and (since is None or r.time >= since)
            and (until is None or r.time < until)
        ]

    def count(self, operation: Op | str | None = None, *, fault: Kind | str | None = ANY,
              since: float | None = None, until: float | None = None) -> int:
        """How many requests match; filters as records()."""
        return len(self.records(operation, fault=fault, since=since, until=until))

    def counts(self, *, since: float | None = None, until: float | None = None) -> Counter[Op]:
        """Requests per operation within the window."""
        return Counter(r.operation for r in self.records(since=since, until=until))

    def rate(self, operation: Op | str | None = None, *, since: float, until: float | None = None,
             fault: Kind | str | None = ANY) -> float:
        """Requests per second that match, over the window [since, until) (until: now)."""
        until = time.monotonic() if until is None else until
        if until <= since:
            raise ValueError("the window must not be empty: until must come after since")
        return self.count(operation, fault=fault, since=since, until=until) / (until - since)

    def wait_for(self, number: int, operation: Op | str | None = None, *, fault: Kind | str | None = ANY,
                 since: float | None = None, timeout: float = 10.0) -> bool:
        """Wait until at least number requests match (filters as records()); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.count(operation, fault=fault, since=since) < number:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def forget(self) -> None:
        """Drop the records seen so far."""
        with self._changed:
            self._records.clear()

    def __repr__(self) -> str:
        return f"FaultProxy({self.endpoint_url or 'stopped'} -> {self.upstream_host}:{self.upstream_port})"

