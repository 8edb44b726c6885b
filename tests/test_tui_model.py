"""The dashboard's pure parts: rates from snapshots, event batching, bucket listing, pcap, formatting."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import dpkt
import pytest

from agent.events import EventQueue, Notice, PacketSeen, StatsSampled
from agent.lab.recorded import LOCAL, PEER, echo, recorded_events, sample_bucket, udp
from hoshino_tui import formatting
from hoshino_tui.bucket import MemoryStore, describe
from hoshino_tui.messages import AgentStarted, NoticePosted, PacketsSeen, StatsUpdated
from hoshino_tui.pcap import LINKTYPE_RAW, write_pcap
from hoshino_tui.pump import EventPump
from hoshino_tui.sampler import RateSeries, StatsModel
from hoshino_tui.widgets.packet_table import short_address


def stats(time: float, packets_out: int = 0, put: int = 0, interval: float = 0.5) -> StatsSampled:
    return StatsSampled(
        time=time, state="running", interval=interval, manual=False, packets_out=packets_out, bytes_out=0,
        packets_in=0, bytes_in=0, s3_ops={"put": put}, s3_errors={}, s3_latency={}, dropped={},
        ignored={}, missed_beats=0, events_dropped=0, waiting_egress=0,
    )


def test_rate_series_rate_and_one_point_per_step() -> None:
    series = RateSeries(step=1.0, window=1.0)
    for tick in range(0, 21):  # five seconds at 4 Hz, 10 per second
        series.add(100 + tick / 4, tick * 10 // 4)
    assert series.rate == pytest.approx(10, rel=0.15)
    assert len(series.history) == 5
    assert all(point == pytest.approx(10, rel=0.15) for point in series.history)
    assert series.total == 50


def test_rate_series_treats_a_falling_counter_as_a_restart() -> None:
    series = RateSeries()
    series.add(0, 1000)
    series.add(1, 2000)
    series.add(2, 5)
    assert series.rate == 0
    series.add(3, 105)
    assert series.rate == pytest.approx(100)


def test_stats_model_view_from_cumulative_counters() -> None:
    model = StatsModel()
    assert model.view() is None
    for second in range(6):
        model.add(stats(10 + second, packets_out=second * 50, put=second * 5, interval=0.25))
    view = model.view()
    assert view is not None
    assert view.traffic["packets_out"].rate == pytest.approx(50)
    assert view.s3["put"].rate == pytest.approx(5)
    assert view.s3["put"].total == 25
    assert view.s3["get"].total == 0
    assert view.polls[-1] == pytest.approx(4.0)
    assert view.samples == 6


def test_pump_batches_events_and_keeps_every_snapshot_in_the_rates() -> None:
    queue = EventQueue()
    posted: list[object] = []
    pump = EventPump(queue, posted.append)
    events = recorded_events()
    for event in events:
        queue.publish(event)
    while pump.pump_once():
        pass
    assert pump.count == len(events)
    kinds = [type(message) for message in posted]
    assert kinds[0] is AgentStarted
    assert kinds.count(StatsUpdated) == 1  # one redraw for the whole burst
    packets = [p for message in posted if isinstance(message, PacketsSeen) for p in message.packets]
    assert len(packets) == sum(isinstance(event, PacketSeen) for event in events)
    assert [n.notice.level for n in posted if isinstance(n, NoticePosted)] == ["warning", "info"]
    view = next(message for message in posted if isinstance(message, StatsUpdated)).view
    # 90 s of one ping a second each way: the history holds the whole run, not the last snapshot.
    assert len(view.traffic["packets_in"].history) >= 85
    assert view.traffic["packets_in"].total > 90
    assert view.s3_errors["throttled"] == 3


def test_stats_updates_coalesce_keeping_the_oldest_time() -> None:
    model = StatsModel()
    model.add(stats(1))
    view = model.view()
    assert view is not None
    older, newer = StatsUpdated(view, 1.0), StatsUpdated(view, 2.0)
    assert older.can_replace(newer)
    assert newer.oldest == 1.0
    assert not older.can_replace(NoticePosted(Notice(0, "info", "x")))


def test_describe_groups_by_destination_in_send_order() -> None:
    store = MemoryStore({**sample_bucket(), "README": (b"hello", datetime(2025, 1, 1, tzinfo=UTC))})
    objects = describe(store.list_objects())
    destinations = [obj.destination for obj in objects]
    assert destinations == [*sorted(destinations[:-1]), ""]
    assert set(destinations[:-1]) == {ipaddress.IPv6Address(PEER).compressed,
                                      ipaddress.IPv6Address(LOCAL).compressed}
    peer = [obj for obj in objects if obj.destination == PEER]
    assert [obj.sent_at for obj in peer] == sorted(obj.sent_at for obj in peer if obj.sent_at)
    assert objects[-1].key == "README" and objects[-1].sent_at is None
    assert store.get("missing") is None


def test_pcap_round_trip(tmp_path: Path) -> None:
    packets = [(1764151200.25, echo(LOCAL, PEER, 1, 1)), (1764151201.5, udp(LOCAL, PEER, 1, 2, b"x" * 999))]
    path = tmp_path / "out.pcap"
    assert write_pcap(path, packets) == 2
    with path.open("rb") as file:
        reader = dpkt.pcap.Reader(file)
        assert reader.datalink() == LINKTYPE_RAW
        read = [(ts, bytes(data)) for ts, data in reader]
    assert [data for _, data in read] == [data for _, data in packets]
    assert [ts for ts, _ in read] == pytest.approx([ts for ts, _ in packets], abs=1e-6)


def test_formatting() -> None:
    assert formatting.size(1536) == "1.54 kB"
    assert formatting.size(12) == "12 B"
    assert formatting.seconds(0.0092) == "9.2 ms"
    assert formatting.seconds(0.5) == "500 ms"
    assert formatting.uptime(3 * 3600 + 62) == "3:01:02"
    assert formatting.age(192) == "3m12s"
    assert formatting.count(49_400) == "49.4k"


def test_short_address_inside_and_outside_the_network() -> None:
    network = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
    assert short_address(LOCAL, network) == "::a"
    assert short_address("fd5e:59b8:f71d:9a3e:3c1f:9a2b:77d0:41e5", network) == "::3c1f:9a2b:77d0:41e5"
    assert short_address("ff02::2", network) == "ff02::2"
    assert short_address(LOCAL, None) == LOCAL
