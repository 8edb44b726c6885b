"""The hoshino-tui application: runs a node in a worker and shows what it does."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from agent.config import Config
from agent.events import EventQueue
from agent.prices import DEFAULT_PRESET, PriceError, load_prices
from agent.recent import CarriedObject

from .bucket import BucketListing, StoreLike
from .controls import NodeControl
from .messages import (
    AgentCreated,
    AgentFailed,
    AgentStarted,
    AgentStopped,
    NoticePosted,
    PacketsSeen,
    StatsUpdated,
    ViewPaused,
)
from .network import NetworkSource
from .pump import EventPump
from .screens.dashboard import DashboardScreen
from .screens.help import HelpScreen, KeySection
from .screens.inspector import InspectorScreen
from .screens.network import NetworkScreen
from .screens.packet_detail import PacketDetailScreen
from .widgets.filter_bar import FilterBar
from .widgets.node_header import NodeFacts
from .widgets.packet_table import PacketTable

STOP_TIMEOUT = 15.0
"""How long quitting waits for the node to remove its device and route."""
HOLD_SLOW = 5.0
"""What h holds the heartbeat at: slow enough to see objects wait in the bucket (the inspector lists
every three seconds), under the default --max-age (10 s), so they are not refused as stale."""


class HoshinoApp(App[None]):
    """The dashboard, or with inspect_only the inspector alone.

    The app holds the node, the workers that run it and read its events, and the keys that act on
    the node; the screens own their panes. The node's messages go to the dashboard, which draws them,
    and bubble on to the app, which keeps the node's state from them.
    """

    CSS_PATH = "app.tcss"
    TITLE = "hoshino"
    BINDINGS = [
        Binding("f", "faster", "Faster", id="faster",
                tooltip="Double the node's poll rate, within its bounds; the heartbeat stays forced until a"),
        Binding("s", "slower", "Slower", id="slower",
                tooltip="Halve the node's poll rate; past the idle bound packets wait in the bucket, "
                        "where the inspector sees them"),
        Binding("a", "automatic", "Auto", id="automatic", tooltip="Let the heartbeat adapt to traffic again"),
        # Out of the footer, which must fit 80 columns: the heartbeat pane names it.
        Binding("h", "hold", "Hold 5 s", id="hold", show=False,
                tooltip="Hold the heartbeat at one poll every 5 s, so objects wait in the bucket where the "
                        "inspector sees them; a gives it back"),
        Binding("i", "inspector", "Inspector", id="inspector", tooltip="The objects waiting in the bucket"),
        # Kept out of the footer, which must fit 80 columns with q: help and the command palette list it.
        Binding("n", "network", "Network", id="network", show=False,
                tooltip="Every node this one knows: traffic, silence and cost, from their metrics pages"),
        Binding("question_mark", "help", "Help", key_display="?", id="help", tooltip="Keys and what each pane shows"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Stop the node (it removes its device and route) and quit"),
    ]
    HEARTBEAT_ACTIONS = ("faster", "slower", "automatic", "hold")
    """The keys that act on a live node's heartbeat, hidden in a replay (a recording cannot be sped up)."""
    NODE_ACTIONS = (*HEARTBEAT_ACTIONS, "inspector")
    """The keys that need a node, hidden when the inspector runs alone (its network screen lists inboxes)."""

    state: reactive[str] = reactive("starting", init=False)
    """The node's state: starting, running, degraded, stopping, stopped or failed; a replay's is replaying,
    paused or ended."""

    def __init__(
        self,
        events: EventQueue | None = None,
        node_factory: Callable[[], NodeControl] | None = None,
        *,
        config: Config | None = None,
        store_factory: Callable[[], StoreLike] | None = None,
        inspect_only: bool = False,
        clock: Callable[[], float] = time.time,
        pcap_dir: Path = Path("."),
        after_start: Callable[[], None] | None = None,
        probe: Callable[[float], None] | None = None,
        network: NetworkSource | None = None,
        replay: str = "",
        tear_down: Callable[[], None] | None = None,
    ) -> None:
        """node_factory makes the node in a worker thread, so a failure there is shown, not raised.
        after_start runs in that thread once the node is up; probe(t) is called after the screen
        shows an event published at time t (for the benchmark); network: where the network screen reads
        the nodes' pages (default: the running node's page and its peers', in its namespace). replay
        names the recording the node plays back (its node cannot be steered); tear_down removes, once
        the node has stopped, what was built for it (the demo's lab), while the screen still says so."""
        super().__init__()
        self.events = events if events is not None else EventQueue()
        self.node_factory = node_factory
        self.config = config
        self.store_factory = store_factory
        self._bucket_listing: BucketListing | None = None
        self.inspect_only = inspect_only
        self.clock = clock
        self.pcap_dir = pcap_dir
        self.after_start = after_start
        self.probe = probe
        self.network = network
        self.replay = replay
        self.tear_down = tear_down
        self._torn_down = threading.Lock()
        self._quitting = False
        self.node: NodeControl | None = None
        self.pump = EventPump(self.events, self._deliver)
        self.bucket = config.bucket if config else ""
        self._stop = threading.Event()
        self._node_done = threading.Event()
        self._dashboard: DashboardScreen | None = None
        self.failure = ""
        """Why the node failed, if it did: the command line says it again and exits 1."""

    def _facts(self) -> NodeFacts:
        config = self.config
        if config is None:
            return NodeFacts(replay=self.replay)
        return NodeFacts(address=config.address.compressed if config.address else "",
                         interface=config.interface, netns=config.netns, bucket=config.bucket,
                         endpoint=config.endpoint_url or "", replay=self.replay)

    def get_default_screen(self) -> Screen[None]:
        if self.inspect_only:
            return self._inspector(standalone=True)
        config = self.config
        bounds = (config.fastest_poll, config.slowest_poll) if config else (0.0, 0.0)
        self._dashboard = DashboardScreen(self._facts(), network=config.network if config else None,
                                          bounds=bounds, clock=self.clock, pcap_dir=self.pcap_dir)
        return self._dashboard

    def _inspector(self, standalone: bool = False) -> InspectorScreen:
        config = self.config
        network = self._dashboard.network if self._dashboard else config.network if config else None
        return InspectorScreen(self._listing(), bucket=config.bucket if config else self.bucket,
                               key_prefix=config.key_prefix if config else "", clock=self.clock,
                               pcap_dir=self.pcap_dir, standalone=standalone, recent=self._recent_objects,
                               network=network)

    def _listing(self) -> BucketListing | None:
        """The bucket under the key prefix, one store for the inspector and the network screen; None: no bucket."""
        if self._bucket_listing is None and self.store_factory is not None:
            self._bucket_listing = BucketListing(self.store_factory, self.config.key_prefix if self.config else "")
        return self._bucket_listing

    def _recent_objects(self) -> list[CarriedObject]:
        return self.node.recent_objects() if self.node is not None else []

    def on_mount(self) -> None:
        # SIGTERM quits like q does, so the node removes its device and route.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda _signum, _frame: self.call_later(self.action_quit))

    def on_ready(self) -> None:
        # Ready comes once the first screen is composed, so the workers' messages find its widgets.
        if self.inspect_only:
            return
        self._consume_events()
        if self.node_factory is None:
            self._deliver(AgentFailed("No node to run: start with --bucket NAME, or --demo for a local lab."))
        else:
            self._run_node()

    def _deliver(self, message: Message) -> None:
        """Send a message about the node to the dashboard (from any thread); it bubbles on to the app."""
        if self._dashboard is not None:
            self._dashboard.post_message(message)

    def watch_state(self, state: str) -> None:
        if self._dashboard is not None and self._dashboard.is_attached:
            self._dashboard.show_state(state)

    # Workers. The agent publishes without waiting; these read and act, and only post messages.

    @work(thread=True, exclusive=True, exit_on_error=False, group="node", description="run the node")
    def _run_node(self) -> None:
        assert self.node_factory is not None
        try:
            node = self.node_factory()
        except Exception as error:
            self._deliver(AgentFailed(str(error) or type(error).__name__))
            self._node_done.set()
            return
        self._deliver(AgentCreated(node))
        try:
            try:
                node.start()
            except Exception as error:
                self._deliver(AgentFailed(str(error) or type(error).__name__))
                return
            if self.after_start is not None:
                try:
                    self.after_start()
                except Exception as error:
                    self._deliver(AgentFailed(f"started, but the demo traffic did not: {error}"))
            worker = get_current_worker()
            while not (self._stop.is_set() or worker.is_cancelled or node.wait(timeout=0.25)):
                pass
        finally:
            try:
                node.stop()
            finally:
                self._node_done.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="events",
          description="read the node's events")
    def _consume_events(self) -> None:
        worker = get_current_worker()

        def finished() -> bool:
            # After the node stops, read on until its last events (NodeStopped) are shown.
            return worker.is_cancelled or (self._node_done.is_set() and self.events.queue.empty())

        self.pump.run(finished)

    # What the node reports, once the dashboard has drawn it: the node's state.

    def on_agent_created(self, message: AgentCreated) -> None:
        self.node = message.node

    def on_agent_started(self, message: AgentStarted) -> None:
        self.bucket = message.event.bucket
        self.state = "replaying" if self.replay else "running"

    def on_agent_failed(self, message: AgentFailed) -> None:
        self.state = "failed"
        self.failure = message.message

    def on_agent_stopped(self, message: AgentStopped) -> None:
        if message.event.error:
            self.state = "failed"
            self.failure = message.event.error
        elif self.state != "failed":
            self.state = "stopped"

    def on_stats_updated(self, message: StatsUpdated) -> None:
        if self.replay:
            if self.state not in ("failed", "stopped", "stopping", "ended", "paused"):
                self.state = "replaying" if message.view.state == "running" else message.view.state
        elif self.state not in ("failed", "stopped", "stopping"):
            self.state = message.view.state
        self._probe(message.oldest)

    def on_packets_seen(self, message: PacketsSeen) -> None:
        self._probe(message.packets[0].time)

    def on_view_paused(self, message: ViewPaused) -> None:
        # A replay's p holds the playback itself: the recording waits instead of going by unseen.
        node = self.node
        if not self.replay or node is None or self.state not in ("replaying", "paused"):
            return
        control = getattr(node, "pause" if message.paused else "resume", None)
        if control is not None:
            control()
            self.state = "paused" if message.paused else "replaying"

    def on_notice_posted(self, message: NoticePosted) -> None:
        # A replay tells its end with a notice, after every recorded event.
        if self.replay and getattr(self.node, "ended", False) and self.state not in ("failed", "stopped"):
            self.state = "ended"

    def _probe(self, published: float) -> None:
        if self.probe is not None:
            self.call_after_refresh(self.probe, published)

    # Actions: the heartbeat keys act on the node itself; its controls are thread-safe and quick.

    def _running_node(self) -> NodeControl | None:
        if self.node is None or self.state in ("failed", "stopped"):
            self.notify("The node is not running", severity="warning", timeout=3)
            return None
        return self.node

    def _nudge(self, control: Callable[[NodeControl], None]) -> None:
        """Apply a heartbeat control to the running node and show the new interval at once."""
        node = self._running_node()
        if node is None:
            return
        control(node)
        if self._dashboard is not None:
            self._dashboard.show_heartbeat(node.interval, node.manual)

    def action_faster(self) -> None:
        """Double the node's poll rate."""
        self._nudge(lambda node: node.faster())

    def action_slower(self) -> None:
        """Halve the node's poll rate."""
        self._nudge(lambda node: node.slower())

    def action_automatic(self) -> None:
        """Let the heartbeat adapt to traffic again."""
        self._nudge(lambda node: node.automatic())

    def action_hold(self) -> None:
        """Hold the heartbeat at a pace slow enough to watch objects wait in the bucket."""
        self._nudge(lambda node: node.hold(HOLD_SLOW))

    def action_inspector(self) -> None:
        """Open the inspector over the dashboard."""
        if self.inspect_only or isinstance(self.screen, InspectorScreen):
            return
        self.push_screen(self._inspector())

    def action_network(self) -> None:
        """Open the network screen over the dashboard (or, with the inspector alone, the bucket's inboxes)."""
        if isinstance(self.screen, NetworkScreen):
            return
        config = self.config or getattr(self.node, "config", None)  # the demo's node has the config
        try:
            prices = load_prices(config.prices if config else DEFAULT_PRESET)
        except PriceError:
            prices = load_prices(DEFAULT_PRESET)
        source = None if self.inspect_only else self.network or NetworkSource.of(config)
        self.push_screen(NetworkScreen(source, prices, self._listing()))

    def help_sections(self) -> list[KeySection]:
        """The keys of every screen, as their bindings declare them, for the help screen."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands",
                          tooltip="Every action by name")
        everywhere = [binding for binding in self.BINDINGS
                      if not (isinstance(binding, Binding) and self.check_action(binding.action, ()) is False)]
        sections: list[KeySection] = [("everywhere", [*everywhere, palette])]
        if not self.inspect_only:
            sections += [
                ("dashboard", [*DashboardScreen.BINDINGS, *PacketTable.BINDINGS]),
                ("filter bar", [Binding("enter", "apply", "Apply", tooltip="Filter the table"),
                                *FilterBar.BINDINGS]),
                ("packet decode", PacketDetailScreen.BINDINGS),
            ]
        sections.append(("network", NetworkScreen.BINDINGS))
        sections.append(("inspector", InspectorScreen.BINDINGS))
        sections.append(("help", HelpScreen.BINDINGS))
        return sections

    def action_help(self) -> None:
        """Show the keys and what each pane means."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """With the inspector alone there is no node: hide the keys that act on one; a replay's
        heartbeat was recorded: hide the keys that would steer it."""
        if self.inspect_only and action in self.NODE_ACTIONS:
            return False
        return not (self.replay and action in self.HEARTBEAT_ACTIONS)

    def stop_node(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the node from any thread, wait until it has removed what it added, then tear down the rest."""
        self._stop.set()
        if self.node_factory is not None:
            self._node_done.wait(timeout)
        self._tear_down()

    def _tear_down(self) -> None:
        if self.tear_down is not None and self._torn_down.acquire(blocking=False):
            self.tear_down()

    async def action_quit(self) -> None:
        """Stop the node (it removes its device and route) and what was built for it, saying so, then leave."""
        if self._quitting:
            return  # already on its way out
        self._quitting = True
        # In a worker, so the screen keeps drawing what is being torn down while it is.
        self.run_worker(self._quit(), name="quit", group="quit", exclusive=True, exit_on_error=False,
                        description="stop the node and leave")

    async def _quit(self) -> None:
        try:
            self._stop.set()
            stopping = self.node_factory is not None and not self.inspect_only and not self._node_done.is_set()
            if stopping:
                self.state = "stopping"
                if not self.replay:
                    self._say_quitting("Stopping the node: its loops and last deletes, then its device and route"
                                       + ("; the demo's peer node and traffic alongside" if self.tear_down else ""))
            # The rest winds down alongside the node: tear_down waits for the node where it must.
            tearing = asyncio.create_task(asyncio.to_thread(self._tear_down)) if self.tear_down else None
            if stopping:
                await asyncio.to_thread(self._node_done.wait, STOP_TIMEOUT)
            if tearing is not None:
                self._say_quitting("Removing the demo's namespaces and its S3 and SQS servers")
                await tearing
        finally:
            self.exit()  # whatever failed on the way, q leaves

    def _say_quitting(self, what: str) -> None:
        self.clear_notifications()
        self.notify(what, title="Quitting", timeout=STOP_TIMEOUT)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        # Textual's own quit leaves at once: ours stops the node first, so it replaces it.
        yield from (command for command in super().get_system_commands(screen) if command.title != "Quit")
        if not (self.inspect_only or self.replay):
            yield SystemCommand("Poll faster", "Double the node's poll rate (f)", self.action_faster)
            yield SystemCommand("Poll slower", "Halve the node's poll rate (s)", self.action_slower)
            yield SystemCommand("Hold the heartbeat slow", "One poll every 5 s: objects wait in the bucket (h)",
                                self.action_hold)
            yield SystemCommand("Automatic heartbeat", "Let the poll rate adapt again (a)", self.action_automatic)
        if not self.inspect_only:
            yield SystemCommand("Inspector", "Objects waiting in the bucket (i)", self.action_inspector)
        yield SystemCommand("Network", "Every node: traffic, silence, cost and inboxes (n)", self.action_network)
        yield SystemCommand("Help", "Keys and panes (?)", self.action_help)
        if isinstance(screen, DashboardScreen):
            yield SystemCommand("Pause or resume packets", "Freeze the packet table (p)",
                                screen.action_toggle_pause)
            yield SystemCommand("Filter packets", "Show only the packets that match (/)", screen.action_filter)
            yield SystemCommand("Decode packet", "Full decode of the highlighted packet (Enter)",
                                screen.action_open_packet)
            yield SystemCommand("Write packets to pcap", "The packets the table shows, filtered or not (w)",
                                screen.action_write_packets)
        if isinstance(screen, InspectorScreen):
            yield SystemCommand("Refresh bucket", "List the bucket again (r)", screen.action_refresh)
            yield SystemCommand("Filter objects", "Show only the objects with a packet that matches (/)",
                                screen.action_filter)
            yield SystemCommand("Write selected to pcap", "The selected object's packets (w)",
                                screen.action_write_selected)
            yield SystemCommand("Write all to pcap", "Every listed object's packets (W)", screen.action_write_all)
        if isinstance(screen, NetworkScreen):
            yield SystemCommand("Read the network now", "Every node's metrics page, and the inboxes (r)",
                                screen.action_refresh)
        yield SystemCommand("Quit", "Stop the node (it removes its device and route), then leave (q)",
                            self.action_quit)
