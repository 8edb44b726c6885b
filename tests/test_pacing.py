"""Paced delivery: a bundle's packets reach the device at the pace they were sent, within bounds no sender stretches."""

from __future__ import annotations

import secrets
import select
import socket
import threading

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from packets_factory import ip6

from agent import wire
from agent.lab import Lab, wait_until
from agent.netconf import inside
from agent.pacing import MAX_BURST, MIN_GAP, PACE_LIMIT, Pacer, schedule


class FakeTime:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(time: FakeTime, waiting: list[int] | None = None) -> Pacer:
    behind = waiting if waiting is not None else [0]
    return Pacer(lambda: behind[0], sleep=time.sleep, clock=time.clock)


def test_packets_are_written_at_the_offsets_they_were_sent_at():
    time = FakeTime()
    written: list[tuple[float, int]] = []
    paced = pacer(time).write(list(range(5)), [0.0, 0.01, 0.02, 0.02, 0.05], lambda n: written.append((time.now, n)))
    assert [round(at - 100.0, 6) for at, _ in written] == [0.0, 0.01, 0.02, 0.02, 0.05]
    assert [n for _, n in written] == [0, 1, 2, 3, 4]
    assert paced.paced == 5 and paced.at_once == 0 and paced.rate == pytest.approx(100)


def test_gaps_below_a_millisecond_are_not_slept():
    time = FakeTime()
    pacer(time).write(list(range(100)), [n * MIN_GAP / 10 for n in range(100)], lambda n: None)
    assert all(gap >= MIN_GAP for gap in time.slept)
    assert len(time.slept) <= 10


@given(st.lists(st.floats(min_value=0, max_value=0xFFFFFFFF / 1e6), min_size=2, max_size=200))
def test_no_sender_can_hold_the_node_longer_than_the_limit(offsets):
    """Any offsets a bundle can carry (32-bit microseconds): every packet goes, in order, within the limit."""
    time = FakeTime()
    written: list[int] = []
    pacer(time).write(list(range(len(offsets))), offsets, written.append)
    assert written == list(range(len(offsets)))  # every packet, in order
    assert sum(time.slept) <= PACE_LIMIT + 1e-9


def test_the_schedule_is_non_decreasing_and_compressed_to_the_limit():
    assert schedule([0.0, 0.3, 0.1, 0.6]) == pytest.approx([0, 0.1, 0.1, 0.2])
    assert schedule([0.0, 0.05, -3.0]) == [0.0, 0.05, 0.05]


def test_objects_waiting_behind_shrink_the_gaps_of_the_one_ahead():
    time = FakeTime()
    waiting = [0]
    written: list[tuple[float, int]] = []

    def write(n: int) -> None:
        written.append((time.now - 100.0, n))
        waiting[0] = {2: 1, 4: 3}.get(n, waiting[0])  # objects were fetched meanwhile

    paced = pacer(time, waiting).write(list(range(7)), [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06], write)
    assert [n for _, n in written] == list(range(7))
    # 10 ms gaps until one object waits (1.5 times faster), then three (2.5 times): faster, never one burst
    assert [at for at, _ in written] == pytest.approx([0.0, 0.01, 0.02, 0.02 + 0.01 / 1.5, 0.02 + 0.02 / 1.5,
                                                       0.02 + 0.02 / 1.5 + 0.004, 0.02 + 0.02 / 1.5 + 0.008])
    assert paced.paced == 7 and paced.at_once == 0


def test_a_stalled_delivery_slips_its_schedule_rather_than_writing_what_is_overdue_in_one_burst():
    """The CPU held the writer 30 ms: at 1 ms a packet, what fell due meanwhile goes at its pace, later."""
    time = FakeTime()
    written: list[float] = []

    def write(n: int) -> None:
        written.append(time.now - 100.0)
        if n == 10:
            time.now += 0.030  # a stall: another process had the CPU

    pacer(time).write(list(range(40)), [n * 0.001 for n in range(40)], write)
    after_stall = [at for at in written[11:]]
    back_to_back = sum(1 for at in after_stall if at == after_stall[0])
    assert back_to_back <= MAX_BURST / 0.001 + 1  # not the 30 packets that fell due
    assert written[-1] <= PACE_LIMIT  # the slip stays within the object's bound


def test_slips_never_stretch_an_object_past_the_limit():
    time = FakeTime()

    def write(n: int) -> None:
        time.now += 0.05  # every write stalls: slipping alone would never end

    pacer(time).write(list(range(20)), [n * 0.005 for n in range(20)], write)
    assert sum(time.slept) <= PACE_LIMIT + 1e-9


def test_without_offsets_everything_goes_at_once():
    time = FakeTime()
    paced = pacer(time).write([1, 2, 3], None, lambda n: None)
    assert time.slept == [] and paced.at_once == 3 and paced.paced == 0


def test_a_paced_bundle_round_trips_and_a_plain_one_has_no_offsets():
    datas = [bytes([0x60]) + bytes(39 + n) for n in range(3)]
    body = wire.encode(datas, [0.0, 0.0125, 0.5])
    assert wire.body_format(body) == "bundle-v2"
    decoded = wire.decode(body)
    assert decoded.packets == datas and decoded.offsets == pytest.approx([0.0, 0.0125, 0.5])
    assert wire.decode(wire.encode(datas)).offsets is None


# End to end: a burst a UDP socket's default buffer cannot take at once.

PORT = 9998
DATAGRAMS = 500


def datagram(lab: Lab, n: int) -> bytes:
    payload = n.to_bytes(4, "big") + bytes(96)
    segment = dpkt.udp.UDP(sport=5555, dport=PORT, data=payload)
    segment.ulen = 8 + len(payload)
    return ip6(lab.peer_address, lab.local_address, segment, dpkt.ip.IP_PROTO_UDP)


@pytest.mark.root
def test_a_500_packet_bundle_reaches_a_udp_socket_with_a_default_buffer_without_loss():
    """500 datagrams at once overflow a default receive buffer (~208 KB, some 270 small datagrams as the
    kernel counts them); at the pace they were sent, none is lost."""
    with Lab(bucket=f"lab-{secrets.token_hex(4)}", wakeup="poll") as lab:
        lab.spawn_agent("local")
        received: list[int] = []
        ready, stop = threading.Event(), threading.Event()

        def listen() -> None:
            with inside(lab.namespaces["local"].name), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.bind(("::", PORT))
                ready.set()
                while not stop.is_set():
                    if select.select([sock], [], [], 0.1)[0]:
                        received.append(int.from_bytes(sock.recv(65535)[:4], "big"))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        try:
            assert ready.wait(5)
            datas = [datagram(lab, n) for n in range(DATAGRAMS)]
            keys = wire.KeyMaker()
            # Sent over 200 ms: 2,500 datagrams a second, as a game or a call might send.
            offsets = [n * 0.2 / DATAGRAMS for n in range(DATAGRAMS)]
            lab.server.client().put_object(Bucket=lab.bucket, Key=keys.make(lab.local_address),
                                           Body=wire.encode(datas, offsets))
            assert wait_until(lambda: len(received) >= DATAGRAMS, 20), len(received)
            assert received == list(range(DATAGRAMS))
        finally:
            stop.set()
            listener.join(5)
