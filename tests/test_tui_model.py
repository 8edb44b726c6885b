"""The dashboard's pure parts: rates from snapshots, event batching, bucket listing, pcap, formatting."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dpkt
import pytest

from agent.events import EventQueue, Notice, PacketSeen, StatsSampled
from agent.lab.recorded import LOCAL, PEER, echo, recorded_events, sample_bucket, udp
from agent.transport import MemoryBucket
from hoshino_tui import formatting
from hoshino_tui.bucket import describe
from hoshino_tui.messages import AgentStarted, NoticePosted, PacketsSeen, StatsUpdated
from hoshino_tui.pcap import LINKTYPE_RAW, write_pcap
from hoshino_tui.pump import EventPump
from hoshino_tui.sampler import RateSeries, Series, StatsModel
from hoshino_tui.widgets.packet_columns import Layout, layout_columns, short_address
from hoshino_tui.widgets.trend import BARS, BASELINE, trend_text


def stats(time: float, packets_out: int = 0, put: int = 0, interval: float = 0.5, bytes_out: int = 0,
          dollars: dict[str, float] | None = None, nat: float = 0.0) -> StatsSampled:
    return StatsSampled(
        time=time, state="running", interval=interval, manual=False, packets_out=packets_out, bytes_out=bytes_out,
        packets_in=0, bytes_in=0, s3_ops={"put": put}, s3_errors={}, s3_latency={}, dropped={},
        ignored={}, missed_beats=0, events_dropped=0, waiting_egress=0,
        requests={"s3.put": put} if dollars else {}, dollars=dollars or {}, nat_dollars=nat,
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


def test_the_delivery_pace_reaches_the_view() -> None:
    model = StatsModel()
    model.add(replace(stats(0.0), pace_rate=2500.0))
    view = model.view()
    assert view is not None and view.pace_rate == 2500.0


def test_a_slow_counter_reads_as_one_per_interval() -> None:
    series = RateSeries()
    for tick in range(0, 4 * 120 + 1):  # two minutes at 4 Hz, one LIST every 20 s
        series.add(tick / 4, tick // 80)
    assert series.rate == 0 or series.rate >= 1  # a one-second window sees none or one
    assert series.average == pytest.approx(1 / 20, rel=0.1)
    shown = Series(series.rate, series.total, (), series.average)
    assert shown.slow and formatting.rate(shown.shown_rate()) == "1 / 20 s"
    busy = Series(rate=40.0, total=0, history=(), average=1.0)
    assert not busy.slow and busy.shown_rate() == 40.0 and busy.shown_rate(slow=True) == 1.0


def test_cost_per_hour_so_far_per_gb_and_the_nat_figure() -> None:
    model = StatsModel()
    # 100 PUTs a second at $0.005 per 1,000 for two minutes, 1 MB/s out; a NAT gateway for the same time.
    for tick in range(0, 4 * 120 + 1):
        t = tick / 4
        puts = tick * 25
        moved = tick * 250_000
        model.add(stats(t, put=puts, bytes_out=moved, dollars={"s3.put": puts * 0.005 / 1000, "s3.delete": 0.0},
                        nat=0.045 * t / 3600 + 0.045 * moved / 1e9))
    view = model.view()
    assert view is not None
    cost = view.cost
    assert cost.so_far == pytest.approx(12_000 * 0.005 / 1000)  # 12,000 PUTs
    assert cost.per_hour == pytest.approx(100 * 3600 * 0.005 / 1000)  # $1.80 an hour
    assert cost.per_gb == pytest.approx(cost.so_far / 0.12)  # 120 MB moved
    assert cost.nat_per_hour == pytest.approx(0.045 + 0.045 * 3.6)  # $0.045/h + 3.6 GB/h at $0.045
    assert cost.nat_so_far == pytest.approx(0.045 * 120 / 3600 + 0.045 * 0.12)
    assert cost.nat_per_gb == pytest.approx(cost.nat_so_far / 0.12)
    assert cost.by_request == {"s3.put": pytest.approx(0.06), "s3.delete": 0.0}
    assert cost.wakeup == "poll"


def test_no_cost_figures_before_the_node_sends_any() -> None:
    model = StatsModel()
    model.add(stats(1.0))
    model.add(stats(2.0))
    view = model.view()
    assert view is not None
    assert view.cost.so_far == 0 and view.cost.per_gb is None and not view.cost.requests


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
    store = MemoryBucket(objects={**sample_bucket(), "README": (b"hello", datetime(2025, 1, 1, tzinfo=UTC))})
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


def test_sparkline_starts_at_zero() -> None:
    assert trend_text([], 10, ceiling=10).plain == BASELINE * 10  # no data: a flat baseline
    assert trend_text([0.0, 0.0], 5, ceiling=10).plain == BASELINE * 5
    quiet = trend_text([1.0] * 8, 8, ceiling=10).plain  # one a second, against a ceiling of ten: low
    assert set(quiet) == {BARS[0]}
    busy = trend_text([1.0, 50.0, 100.0], 3, ceiling=10).plain  # past the ceiling the largest fills
    assert busy == BARS[0] + BARS[3] + BARS[-1]
    assert trend_text(list(range(100)), 4, ceiling=1).plain[-1] == BARS[-1]  # the newest on the right


def test_formatting() -> None:
    assert formatting.size(1536) == "1.54 kB"
    assert formatting.size(12) == "12 B"
    assert formatting.seconds(0.0092) == "9.2 ms"
    assert formatting.seconds(0.5) == "500 ms"
    assert formatting.uptime(3 * 3600 + 62) == "3:01:02"
    assert formatting.age(192) == "3m12s"
    assert formatting.count(49_400) == "49.4k"
    assert formatting.plural(1, "object") == "1 object"
    assert formatting.plural(2, "destination") == "2 destinations"
    assert formatting.plural(30199, "request") == "30,199 requests"
    assert formatting.rate(1 / 60, "poll") == "1 poll / 60 s"
    assert formatting.rate(62.5, "poll") == "62.5 polls/s"
    assert formatting.rate(1, "poll") == "1 poll/s"
    assert formatting.rate(0.5, "poll") == "0.5 polls/s"
    assert formatting.rate(0) == "0/s"
    assert formatting.period(600) == "10 min"
    assert formatting.dollars(0) == "$0"
    assert formatting.dollars(0.00113) == "$0.00113"
    assert formatting.dollars(0.045) == "$0.0450"
    assert formatting.dollars(7.1) == "$7.10"
    assert formatting.dollars(6437.4) == "$6,437"


def test_short_address_inside_and_outside_the_network() -> None:
    network = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
    assert short_address(LOCAL, network) == "::a"
    assert short_address("fd5e:59b8:f71d:9a3e:3c1f:9a2b:77d0:41e5", network) == "::3c1f:9a2b:77d0:41e5"
    assert short_address("ff02::2", network) == "ff02::2"
    assert short_address(LOCAL, None) == LOCAL


def widths(**content: int) -> dict[str, int]:
    base = {"no": 3, "time": 6, "dir": 2, "proto": 6, "len": 3, "verdict": 9, "reason": 15, "info": 67,
            "info_reason": 80, "source_short": 7, "destination_short": 17, "source_full": 22,
            "destination_full": 22}
    return {**base, **content}


def keys(layout: Layout) -> list[str]:
    return [column.key for column, _ in layout.columns]


def test_columns_fit_the_width() -> None:
    wide = layout_columns(widths(), 197)
    assert keys(wide) == ["no", "time", "dir", "source", "destination", "proto", "len", "verdict", "reason"]
    assert wide.full_addresses and wide.info >= 67  # room for addresses in full and all of Info
    middle = layout_columns(widths(), 157)
    assert not middle.full_addresses and middle.info >= 67  # Info first: addresses stay short
    narrow = layout_columns(widths(), 77)
    # Columns go, least useful first, until Info has room for a TCP segment's flags and numbers.
    assert keys(narrow) == ["time", "source", "destination", "proto", "verdict"]
    assert narrow.reason_in_info and narrow.info >= 22
    assert sum(width + 1 for _, width in narrow.columns) + narrow.info == 77
    # No packet with a reason: its column goes first, at any width.
    assert "reason" not in keys(layout_columns(widths(reason=0), 197))


def test_long_addresses_are_cut_in_the_middle_only_as_a_last_resort() -> None:
    layout = layout_columns(widths(source_short=39, destination_short=39), 77)
    source = dict((column.key, width) for column, width in layout.columns)["source"]
    assert 12 <= source < 39 and layout.info >= 20
