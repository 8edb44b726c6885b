"""The main screen: node header, counter panes and the recent packets table."""

from __future__ import annotations

import ipaddress

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from ..widgets.drops_pane import DropsPane
from ..widgets.heartbeat_pane import HeartbeatPane
from ..widgets.node_header import NodeFacts, NodeHeader
from ..widgets.packet_table import PacketTable
from ..widgets.problem_banner import ProblemBanner
from ..widgets.s3_pane import S3Pane
from ..widgets.traffic_pane import TrafficPane
from .packet_detail import PacketDetailScreen


class DashboardScreen(Screen[None]):
    """Everything about the running node on one screen."""

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause", id="pause",
                tooltip="Freeze the packet table; the node keeps running"),
        Binding("enter", "open_packet", "Decode", id="decode",
                tooltip="Open the full decode of the highlighted packet"),
    ]

    def __init__(self, facts: NodeFacts, network: ipaddress.IPv6Network | None = None,
                 bounds: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self._facts = facts
        self._network = network
        self._bounds = bounds

    def compose(self) -> ComposeResult:
        yield NodeHeader(self._facts, id="header")
        yield ProblemBanner(id="problem")
        with Horizontal(id="top-row"):
            yield S3Pane(id="s3")
            yield HeartbeatPane(id="heartbeat")
        with Horizontal(id="middle-row"):
            yield TrafficPane(id="traffic")
            yield DropsPane(id="drops")
        yield PacketTable(id="packets")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(PacketTable)
        table.network = self._network
        table.focus()
        if any(self._bounds):
            self.query_one(HeartbeatPane).show_bounds(*self._bounds)

    def action_toggle_pause(self) -> None:
        """Freeze or resume the packet table."""
        table = self.query_one(PacketTable)
        if table.paused:
            table.resume()
            self.notify("Following the newest packets", timeout=2)
        else:
            table.pause()
            self.notify("Packet view paused; the node keeps running", timeout=2)

    def action_open_packet(self) -> None:
        """Open the highlighted packet's full decode."""
        packet = self.query_one(PacketTable).packet_at_cursor()
        if packet is None:
            self.notify("No packet yet", severity="warning", timeout=2)
            return
        self.app.push_screen(PacketDetailScreen(packet))
