"""A recorded, fixed run of a node and a fixed bucket: for snapshots, screenshots and tests of the dashboard."""

from __future__ import annotations

import ipaddress
import threading
from datetime import UTC, datetime

import dpkt
import ulid

from agent import wire
from agent.dissect import dissect
from agent.events import (
    Event,
    EventQueue,
    NodeStarted,
    NodeStopped,
    Notice,
    PacketSeen,
    StatsSampled,
    Verdict,
)
from agent.prices import DEFAULT_PRESET, load_prices
from agent.recent import CarriedObject

LOCAL = "fd5e:59b8:f71d:9a3e::a"
PEER = "fd5e:59b8:f71d:9a3e::b"
"""The addresses the lab gives its two nodes."""
T0 = 1764151200.0
"""2025-11-26 10:00:00 UTC: when the recorded node started."""
DURATION = 90.0
END = T0 + DURATION
FASTEST, SLOWEST = 0.001, 0.5
PRICES = load_prices(DEFAULT_PRESET)
"""The price table the recorded node used (the agent's default)."""

def _ip6(src: str, dst: str, nxt: int, upper: dpkt.Packet, hlim: int = 64) -> bytes:
    ip = dpkt.ip6.IP6(src=ipaddress.IPv6Address(src).packed, dst=ipaddress.IPv6Address(dst).packed,
                      nxt=nxt, hlim=hlim, plen=len(bytes(upper)), data=upper)
    return bytes(ip)


def echo(src: str, dst: str, ident: int, seq: int, reply: bool = False, payload: bytes = b"hoshino") -> bytes:
    """An ICMPv6 echo request (or reply)."""
    body = dpkt.icmp6.ICMP6.Echo(id=ident, seq=seq, data=payload)
    return _ip6(src, dst, 58, dpkt.icmp6.ICMP6(type=129 if reply else 128, code=0, data=body))


def tcp(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int = 0,
        win: int = 64800, payload: bytes = b"", mss: int | None = None) -> bytes:
    """A TCP segment; mss adds the option a SYN carries."""
    segment = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win, data=payload)
    if mss is not None:
        segment.opts = b"\x02\x04" + mss.to_bytes(2, "big") + b"\x01\x03\x03\x07"
        segment.off = 5 + len(segment.opts) // 4
    return _ip6(src, dst, 6, segment)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram."""
    datagram = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    return _ip6(src, dst, 17, datagram)


def router_solicitation(src: str) -> bytes:
    """What a fresh TUN sends to ff02::2: the agent ignores it."""
    body = dpkt.icmp6.ICMP6(type=133, code=0, data=b"\0\0\0\0")
    return _ip6(src, "ff02::2", 58, body, hlim=255)


def sample_packets() -> dict[str, bytes]:
    """One packet of each kind the inspector must decode."""
    return {
        "echo": echo(LOCAL, PEER, 7, 3, payload=b"hoshino-ping"),
        "syn": tcp(LOCAL, PEER, 51234, 8081, dpkt.tcp.TH_SYN, 1_000_000, mss=1440),
        "udp": udp(LOCAL, PEER, 5353, 5353, b"hoshino udp datagram"),
        "synack": tcp(PEER, LOCAL, 8081, 51234, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, 77_000,
                      1_000_001, mss=1440),
        "reply": echo(PEER, LOCAL, 7, 3, reply=True, payload=b"hoshino-ping"),
    }


def fixed_ulid(seconds: float, serial: int) -> ulid.ULID:
    """A ULID with a given time and a fixed 'random' part, so keys stay the same run to run."""
    return ulid.ULID.from_bytes(int(seconds * 1000).to_bytes(6, "big") + serial.to_bytes(10, "big"))


def sample_bucket(prefix: str = "") -> dict[str, tuple[bytes, datetime]]:
    """Objects as a bucket holds them: raw packets to the peer, one bundle, and a reply waiting here."""
    packets = sample_packets()
    bodies = [
        (PEER, packets["echo"]),
        (PEER, packets["syn"]),
        (PEER, packets["udp"]),
        (PEER, wire.encode([packets["echo"], packets["syn"], packets["udp"]])),
        (LOCAL, packets["reply"]),
        (LOCAL, packets["synack"]),
    ]
    bucket = {}
    for serial, (destination, body) in enumerate(bodies, start=1):
        sent = END - 30 + serial * 2.5
        key = f"{wire.inbox(prefix, ipaddress.IPv6Address(destination))}{fixed_ulid(sent, serial)}"
        bucket[key] = (body, datetime.fromtimestamp(sent + 0.02, UTC))
    return bucket


def packet_event(time: float, packet: bytes, direction: str, verdict: Verdict = "sent",
                 reason: str = "", key: str = "") -> PacketSeen:
    """A PacketSeen for packet as the agent would publish it."""
    decoded = dissect(packet)
    ip = decoded.layer("IPv6")
    return PacketSeen(
        time=time, direction=direction,  # type: ignore[arg-type]
        source=str(ip.field("Source").value), destination=str(ip.field("Destination").value),
        protocol=decoded.summary.split(" ", 1)[0], summary=decoded.summary, length=len(packet),
        key=key, verdict=verdict, reason=reason, packet=packet,
    )


def _traffic() -> list[PacketSeen]:
    events: list[PacketSeen] = []
    serial = 0

    def key(destination: str, time: float) -> str:
        nonlocal serial
        serial += 1
        return f"{destination}/{fixed_ulid(time, serial)}"

    for second in range(1, int(DURATION)):
        t = T0 + second
        out = echo(LOCAL, PEER, 7, second)
        events.append(packet_event(t + 0.100, out, "out", key=key(PEER, t + 0.100)))
        events.append(packet_event(t + 0.131, echo(PEER, LOCAL, 7, second, reply=True), "in", "delivered",
                                   key=key(LOCAL, t + 0.131)))
        if second % 10 == 5:
            client, server, port = 1_000_000 * second, 77_000 * second, 40_000 + second
            exchange = [
                (0.30, "out", tcp(LOCAL, PEER, port, 8081, dpkt.tcp.TH_SYN, client, mss=1440)),
                (0.34, "in", tcp(PEER, LOCAL, 8081, port, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, server,
                                 client + 1, mss=1440)),
                (0.35, "out", tcp(LOCAL, PEER, port, 8081, dpkt.tcp.TH_ACK, client + 1, server + 1)),
                (0.36, "out", tcp(LOCAL, PEER, port, 8081, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, client + 1,
                                  server + 1, payload=b"GET /metrics HTTP/1.1\r\nHost: peer\r\n\r\n")),
                (0.41, "in", tcp(PEER, LOCAL, 8081, port, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, server + 1,
                                 client + 38, payload=b"HTTP/1.1 200 OK\r\n" + b"x" * 900)),
                (0.42, "out", tcp(LOCAL, PEER, port, 8081, dpkt.tcp.TH_ACK | dpkt.tcp.TH_FIN, client + 38,
                                  server + 919)),
            ]
            for offset, direction, packet in exchange:
                verdict: Verdict = "sent" if direction == "out" else "delivered"
                destination = PEER if direction == "out" else LOCAL
                events.append(packet_event(t + offset, packet, direction, verdict,
                                           key=key(destination, t + offset)))
        if second % 3 == 0:
            packet = udp(LOCAL, PEER, 5353, 5353, b"hoshino udp #%d" % second)
            events.append(packet_event(t + 0.6, packet, "out", key=key(PEER, t + 0.6)))
        if second % 30 == 2:
            events.append(packet_event(t + 0.7, router_solicitation("fe80::a"), "out",
                                       "ignored", "multicast"))
        if second == 61:
            stray = echo(LOCAL, "fd00:dead:beef::1", 9, 1)
            events.append(packet_event(t + 0.8, stray, "out", "ignored", "outside_network"))
        if second == 47:
            events.append(PacketSeen(t + 0.9, "in", "", LOCAL, "object", "unknown object format (first bytes 00ff1234)",
                                     0, key(LOCAL, t + 0.9), "dropped", "bad_object"))
    return sorted(events, key=lambda event: event.time)


def _stats(packets: list[PacketSeen]) -> list[StatsSampled]:
    samples: list[StatsSampled] = []
    interval, polls, index = SLOWEST, 0.0, 0
    totals = {"packets_out": 0, "bytes_out": 0, "packets_in": 0, "bytes_in": 0}
    dropped: dict[str, int] = {}
    ignored: dict[str, int] = {}
    throttled = 0
    steps = int(DURATION * 4)
    for step in range(1, steps + 1):
        t = T0 + step / 4
        busy = False
        while index < len(packets) and packets[index].time <= t:
            event = packets[index]
            index += 1
            if event.verdict == "dropped":
                dropped[event.reason] = dropped.get(event.reason, 0) + 1
            elif event.verdict == "ignored":
                ignored[event.reason] = ignored.get(event.reason, 0) + 1
            else:
                totals[f"packets_{event.direction}"] += 1
                totals[f"bytes_{event.direction}"] += event.length
                busy = True
        polls += 0.25 / interval
        # The agent's heartbeat: work found halves the interval, an idle beat doubles it.
        interval = max(FASTEST, interval / 4) if busy else min(SLOWEST, interval * 2)
        degraded = 40 * 4 <= step < 46 * 4
        if degraded and step % 8 == 0:
            throttled += 1
        latency_wobble = 0.0007 * ((step * 37) % 11) / 10
        s3_ops = {"put": totals["packets_out"], "get": totals["packets_in"], "list": int(polls),
                  "delete": totals["packets_in"] // 2, "head": 1}
        requests = {f"s3.{op}": n for op, n in s3_ops.items()}
        moved = totals["bytes_in"] + totals["bytes_out"]
        samples.append(StatsSampled(
            time=t, state="degraded" if degraded else "running", interval=interval, manual=False,
            packets_out=totals["packets_out"], bytes_out=totals["bytes_out"],
            packets_in=totals["packets_in"], bytes_in=totals["bytes_in"],
            s3_ops=s3_ops,
            s3_errors={"throttled": throttled, "timeout": 1 if step > 200 else 0},
            s3_latency={"put": 0.0092 + latency_wobble, "get": 0.0088 + latency_wobble,
                        "list": 0.0104 + latency_wobble, "delete": 0.0071 + latency_wobble},
            dropped=dict(dropped), ignored=dict(ignored), missed_beats=2 if step > 170 else 0,
            events_dropped=0, waiting_egress=0,
            requests=requests,
            dollars={key: PRICES.requests("s3", key[3:], n) for key, n in requests.items()},
            nat_dollars=PRICES.nat_gateway((t - T0) / 3600, moved), wakeup="poll",
        ))
    return samples


def recorded_events() -> list[Event]:
    """Ninety seconds of a node pinging its peer, fetching its metrics and sending some UDP."""
    started = NodeStarted(time=T0, address=LOCAL, network="fd5e:59b8:f71d:9a3e::/64", interface="hoshino0",
                          netns="hoshino-local", bucket="hoshino-lab", endpoint="http://127.0.0.1:41234",
                          mtu=53049, fastest=FASTEST, slowest=SLOWEST)
    packets = _traffic()
    notices = [
        Notice(T0 + 40.1, "warning", "S3 is throttling requests (SlowDown): backing off"),
        Notice(T0 + 46.1, "info", "S3 recovered"),
    ]
    timeline: list[Event] = [*packets, *_stats(packets), *notices]
    return [started, *sorted(timeline, key=lambda event: event.time)]


class ReplayNode:
    """A stand-in for agent.node.Node that publishes a recorded run and obeys the heartbeat keys."""

    def __init__(self, events: EventQueue, recorded: list[Event] | None = None,
                 interval: float = 0.064) -> None:
        self.events = events
        self.recorded = recorded_events() if recorded is None else recorded
        self._interval = interval
        self._manual = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.calls: list[str] = []

    @property
    def address(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(LOCAL)

    @property
    def interval(self) -> float:
        with self._lock:
            return self._interval

    @property
    def manual(self) -> bool:
        with self._lock:
            return self._manual

    def start(self) -> None:
        self.calls.append("start")
        for event in self.recorded:
            self.events.publish(event)

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        self.calls.append("stop")
        self.events.publish(NodeStopped(END + 1))

    def recent_objects(self) -> list[CarriedObject]:
        """The synthetic run carries no objects of its own: the inspector lists only its bucket."""
        return []

    def faster(self) -> None:
        self._set(max(FASTEST, self.interval / 2), "faster")

    def slower(self) -> None:
        self._set(min(SLOWEST, self.interval * 2), "slower")

    def hold(self, interval: float) -> None:
        self._set(interval, "hold")

    def automatic(self) -> None:
        with self._lock:
            self._manual = False
        self.calls.append("automatic")

    def _set(self, interval: float, call: str) -> None:
        with self._lock:
            self._interval = interval
            self._manual = True
        self.calls.append(call)
