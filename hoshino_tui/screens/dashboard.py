"""The main screen: node header, counter panes, cost, and the recent packets table with its filter.

The screen receives the node's messages and draws them in its own panes; the app only forwards them."""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen

from .. import formatting
from ..filtering import EVERYTHING
from ..messages import (
    AgentCreated,
    AgentFailed,
    AgentStarted,
    AgentStopped,
    NoticePosted,
    PacketsSeen,
    StatsUpdated,
    ViewPaused,
)
from ..pcap import export_pcap
from ..widgets.cost_pane import CostPane
from ..widgets.drops_pane import DropsPane
from ..widgets.filter_bar import FilterBar
from ..widgets.fitted_footer import FittedFooter
from ..widgets.heartbeat_pane import HeartbeatPane
from ..widgets.node_header import NodeFacts, NodeHeader
from ..widgets.packet_table import PacketTable
from ..widgets.problem_banner import ProblemBanner
from ..widgets.s3_pane import S3Pane
from ..widgets.traffic_pane import TrafficPane
from .packet_detail import PacketDetailScreen

NARROW = 100
"""Below this many columns the panes go two to a row instead of three."""
SHORT = 34
"""Below this many lines the panes drop their extra lines, and two to a row the drops pane hides
(its counts move to the traffic pane's border) so the packet table keeps its rows."""


class DashboardScreen(Screen[None]):
    """Everything about the running node on one screen."""

    BINDINGS = [
        Binding("p", "pause", "Pause", id="pause",
                tooltip="Freeze the packet table; the node keeps running (a replay's playback waits)"),
        Binding("p", "resume", "Resume", id="resume", tooltip="Show what arrived meanwhile and follow the newest"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter",
                tooltip="Show only the packets that match, e.g. udp, port 8081, host ::b, dropped"),
        # Kept out of the footer, which must fit 80 columns: the table's border says "Esc clears".
        Binding("escape", "clear_filter", "Clear filter", id="clear-filter", show=False,
                tooltip="Show every packet again"),
        Binding("enter", "open_packet", "Decode", id="decode",
                tooltip="Open the full decode of the highlighted packet"),
        Binding("w", "write_packets", "Write pcap", id="write-packets", show=False,
                tooltip="Write the packets the table shows (as filtered) to a pcap file"),
    ]

    def __init__(self, facts: NodeFacts, network: ipaddress.IPv6Network | None = None,
                 bounds: tuple[float, float] = (0.0, 0.0), clock: Callable[[], float] = time.time,
                 pcap_dir: Path = Path(".")) -> None:
        """facts.replay set: the node plays a recording back, and its heartbeat cannot be steered."""
        super().__init__()
        self.pcap_dir = pcap_dir
        self._facts = facts
        self._network = network
        self._bounds = bounds
        self.clock = clock
        self._stats_seen = False

    def compose(self) -> ComposeResult:
        yield NodeHeader(self._facts, id="header")
        yield ProblemBanner(id="problem")
        with Container(id="panes"):
            yield S3Pane(id="s3")
            yield HeartbeatPane(replay=bool(self._facts.replay), id="heartbeat")
            yield TrafficPane(id="traffic")
            yield CostPane(id="cost")
            yield DropsPane(id="drops")
        yield PacketTable(id="packets")
        yield FilterBar(id="filter")
        yield FittedFooter()

    def on_mount(self) -> None:
        table = self.query_one(PacketTable)
        table.network = self._network
        self.query_one(FilterBar).network = self._network
        self.query_one(DropsPane).network = self._network
        table.focus()
        if any(self._bounds):
            self.query_one(HeartbeatPane).show_bounds(*self._bounds)
        self.set_interval(1.0, self._tick)
        self._tick()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")
        self.set_class(event.size.height < SHORT, "-short")
        self._show_drops_summary()

    @property
    def network(self) -> ipaddress.IPv6Network | None:
        """The node's network, once known."""
        return self._network

    @property
    def drops_hidden(self) -> bool:
        """Whether the drops pane gives way to the packet table at this size."""
        return self.has_class("-narrow") and self.has_class("-short")

    def _tick(self) -> None:
        self.query_one(NodeHeader).tick(self.clock())

    # What the node reports, forwarded by the app.

    def on_agent_created(self, message: AgentCreated) -> None:
        if not self._stats_seen:  # snapshots, when they came first, are newer
            self.query_one(HeartbeatPane).show_interval(message.node.interval, message.node.manual)

    def on_agent_started(self, message: AgentStarted) -> None:
        event = message.event
        self.query_one(NodeHeader).update_facts(
            address=event.address, interface=event.interface, netns=event.netns, bucket=event.bucket,
            endpoint=event.endpoint, started=event.time)
        table = self.query_one(PacketTable)
        table.origin = event.time
        with contextlib.suppress(ValueError):
            self._network = ipaddress.IPv6Network(event.network)
            table.network = self._network
            self.query_one(FilterBar).network = self._network
            self.query_one(DropsPane).network = self._network
        self.query_one(HeartbeatPane).show_bounds(event.fastest, event.slowest)
        self.query_one(ProblemBanner).clear_problem()

    def on_agent_failed(self, message: AgentFailed) -> None:
        self.query_one(ProblemBanner).show_problem("The node is not running.", message.message)
        self.notify(message.message, title="Node failed", severity="error", timeout=10)

    def on_agent_stopped(self, message: AgentStopped) -> None:
        self.query_one(NodeHeader).update_facts(stopped=message.event.time)
        if message.event.error:
            self.query_one(ProblemBanner).show_problem("The node is not running.", message.event.error)
            self.notify(message.event.error, title="Node failed", severity="error", timeout=10)

    def on_stats_updated(self, message: StatsUpdated) -> None:
        view = message.view
        self._stats_seen = True
        self._tick()  # the uptime keeps pace with a replay played faster than the clock ticks
        self.query_one(NodeHeader).update_facts(clock_offset=view.clock_offset)
        self.query_one(S3Pane).show(view)
        self.query_one(TrafficPane).show(view)
        self.query_one(CostPane).show(view.cost)
        heartbeat = self.query_one(HeartbeatPane)
        if view.doorbell:
            heartbeat.show_wakeups(view.receives, view.s3["list"])
        heartbeat.show_interval(view.interval, view.manual)
        heartbeat.show_skipped(view.missed_beats)
        heartbeat.show_history(view.receives.history if view.doorbell else view.polls)
        self.query_one(DropsPane).show_counts(view.dropped, view.ignored)
        self._show_drops_summary()

    def on_packets_seen(self, message: PacketsSeen) -> None:
        self.query_one(PacketTable).add_packets(message.packets)
        self.query_one(DropsPane).note_packets(message.packets)

    def on_notice_posted(self, message: NoticePosted) -> None:
        notice = message.notice
        severity = "information" if notice.level == "info" else notice.level
        self.notify(notice.message, title="Node", severity=severity, timeout=8)

    def show_state(self, state: str) -> None:
        """Show the node's state in the header (the app decides it)."""
        self.query_one(NodeHeader).update_facts(state=state)

    def show_heartbeat(self, interval: float, manual: bool) -> None:
        """Show a new interval at once, after a heartbeat key."""
        self.query_one(HeartbeatPane).show_interval(interval, manual)

    def _show_drops_summary(self) -> None:
        """While the drops pane is hidden, its totals go in the traffic pane's border."""
        traffic = self.query_one(TrafficPane)
        if not self.drops_hidden:
            traffic.border_subtitle = None
            return
        drops = self.query_one(DropsPane)
        dropped, ignored = drops.totals()
        traffic.border_subtitle = f"{dropped} dropped · {ignored} ignored" if dropped or ignored else None

    # Keys.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer pause or resume, whichever applies; clearing the filter only while one is set."""
        table = self.query_one(PacketTable)
        if action == "pause":
            return not table.paused
        if action == "resume":
            return table.paused
        if action == "clear_filter":
            return table.filter.active
        return True

    def action_pause(self) -> None:
        """Freeze the packet table; the node keeps running (a replay's playback pauses)."""
        self.query_one(PacketTable).pause()
        self.refresh_bindings()
        self.post_message(ViewPaused(True))

    def action_resume(self) -> None:
        """Show what arrived meanwhile and follow the newest packets again."""
        self.query_one(PacketTable).resume()
        self.refresh_bindings()
        self.post_message(ViewPaused(False))

    def action_toggle_pause(self) -> None:
        """Pause or resume, whichever applies (for the command palette)."""
        if self.query_one(PacketTable).paused:
            self.action_resume()
        else:
            self.action_pause()

    def action_filter(self) -> None:
        """Open the filter bar with the filter in force."""
        self.query_one(FilterBar).open(self.query_one(PacketTable).filter.text)

    def action_clear_filter(self) -> None:
        """Show every recent packet again."""
        self.query_one(PacketTable).set_filter(EVERYTHING)
        self.refresh_bindings()

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        table = self.query_one(PacketTable)
        table.set_filter(message.filter)
        table.focus()
        self.refresh_bindings()
        if message.filter.active and not table.row_count:
            self.notify(f"No recent packet matches {message.filter.text!r}; new ones will show as they come",
                        timeout=4)

    def on_filter_bar_cancelled(self, message: FilterBar.Cancelled) -> None:
        self.query_one(PacketTable).focus()

    def action_write_packets(self) -> None:
        """Write the packets the table shows to a new pcap file."""
        packets = [(packet.time, packet.packet) for packet in self.query_one(PacketTable).shown_packets()
                   if packet.packet]
        if not packets:
            self.notify("No packet shown to write", severity="warning", timeout=3)
            return
        self._write(packets)

    @work(thread=True, exclusive=False, exit_on_error=False, group="dashboard-pcap", description="write a pcap file")
    def _write(self, packets: list[tuple[float, bytes]]) -> None:
        try:
            path, count = export_pcap(self.pcap_dir, "packets", self.clock(), packets)
        except OSError as error:
            self.app.call_from_thread(self.notify, f"writing the pcap file failed: {error}", title="pcap",
                                      severity="error", timeout=10)
            return
        self.app.call_from_thread(self.notify, f"{formatting.plural(count, 'packet')} -> {path}",
                                  title="pcap written", timeout=10)

    def action_open_packet(self) -> None:
        """Open the highlighted packet's full decode."""
        packet = self.query_one(PacketTable).packet_at_cursor()
        if packet is None:
            self.notify("No packet yet", severity="warning", timeout=2)
            return
        self.app.push_screen(PacketDetailScreen(packet))

