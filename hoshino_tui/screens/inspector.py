"""The inspector: objects in the bucket and those the node carried, the selected one's layers, and its bytes."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, Tree

from agent import wire
from agent.dissect import Dissection, dissect
from agent.events import PacketSeen
from agent.recent import CarriedObject

from .. import formatting
from ..bucket import MAX_KEYS, BucketListing, BucketObject, describe_carried, merge, packets_of
from ..messages import BucketFailed, ObjectFetched, ObjectsListed, PcapWritten
from ..pcap import export_pcap
from ..widgets.hex_view import HexView, width_beside_tree
from ..widgets.layer_tree import LayerTree, Span
from ..widgets.node_header import fit
from ..widgets.object_table import ObjectTable

REFRESH = 3.0
"""Seconds between listings while the inspector is shown: one LIST each, and the node's ring read again."""

PacketMatcher = Callable[[PacketSeen], bool]
MatcherFactory = Callable[[str], PacketMatcher]
"""Turns what a person typed after / into a test of one packet; raises ValueError saying what is wrong."""


def words_matcher(query: str) -> PacketMatcher:
    """Every word of query appears (ignoring case) in the packet's addresses, protocol, decode, key or verdict."""
    words = query.lower().split()

    def matches(packet: PacketSeen) -> bool:
        text = " ".join((packet.source, packet.destination, packet.protocol, packet.summary, packet.key,
                         packet.verdict, packet.reason, packet.direction)).lower()
        return all(word in text for word in words)

    return matches


def no_objects() -> list[CarriedObject]:
    return []


class InspectorScreen(Screen[None]):
    """List, structure and hex, as termshark and Wireshark show a capture."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="List the bucket again"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter",
                tooltip="Show only objects whose packets match: addresses, protocol, port, verdict or text"),
        Binding("w", "write_selected", "Write pcap", id="write-selected",
                tooltip="Write the selected object's packets to a pcap file"),
        Binding("W", "write_all", "Write all", id="write-all",
                tooltip="Write the packets of every object shown to a pcap file"),
        Binding("escape", "close", "Back", id="close-inspector", tooltip="Clear the filter, or go back"),
    ]

    def __init__(self, listing: BucketListing | None, *, bucket: str = "",
                 key_prefix: str = "", clock: Callable[[], float], pcap_dir: Path = Path("."),
                 standalone: bool = False, recent: Callable[[], Sequence[CarriedObject]] = no_objects,
                 matcher: MatcherFactory = words_matcher, refresh: float = REFRESH,
                 network: ipaddress.IPv6Network | None = None) -> None:
        """recent gives the objects the node carried lately; matcher reads the filter typed after /;
        destinations in network are shown by their interface identifier."""
        super().__init__()
        self.network = network
        self._listing = listing
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.clock = clock
        self.pcap_dir = pcap_dir
        self.standalone = standalone
        self.recent = recent
        self.matcher = matcher
        self.refresh_period = refresh
        self.listed: list[BucketObject] = []
        self.listed_at: float | None = None
        self.listing = False
        self.list_problem = ""
        self.carried: dict[str, bytes] = {}
        self.bodies: dict[str, bytes] = {}
        """Bodies read from the bucket, of the objects shown (a delivered one keeps its bytes here)."""
        self.gone: set[str] = set()
        self.current: BucketObject | None = None
        self.dissections: list[Dissection] = []
        self.query_text = ""
        self.match: PacketMatcher | None = None
        self.filter_problem = ""
        self.total = 0
        self.carried_counts: Counter[str] = Counter()
        self.last_pcap = ""
        self._seen: dict[str, list[PacketSeen]] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="inspector-status")
        yield Input(placeholder="filter: address, protocol, port, verdict or text (Enter keeps it, Esc clears)",
                    id="inspector-filter")
        yield ObjectTable(id="objects")
        with Horizontal(id="inspector-views"):
            yield LayerTree(id="inspector-tree")
            yield HexView(id="inspector-hex")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        # The dump takes exactly what its bytes per line need; the tree, whose lines are long, the rest.
        self.query_one(HexView).styles.width = width_beside_tree(event.size.width)
        self._status()

    def on_mount(self) -> None:
        self.query_one(ObjectTable).network = self.network
        self.query_one(ObjectTable).border_title = "Objects"
        self.query_one(LayerTree).border_title = "Structure"
        self.query_one(HexView).border_title = "Bytes"
        self.query_one("#inspector-filter", Input).display = False
        self.query_one(ObjectTable).focus()
        self._show_nothing()
        self.action_refresh()
        self.set_interval(self.refresh_period, self._tick)

    # What the header says.

    def _title(self) -> Text:
        """The status line, fitted to the width: the filter and its count are the last to go."""
        if self._listing is None:
            bucket: tuple[str, str] = ("none: what the node carried only", "italic")
        else:
            bucket = (self.bucket or "-", "bold")
        parts: list[tuple[int, Text]] = [(0, Text(" inspector ", style="bold reverse")),
                                         (2, Text.assemble("  bucket ", bucket))]
        if self.key_prefix:
            parts.append((3, Text(f"  prefix {self.key_prefix!r}")))
        parts.append((1, Text("  " + self._counts(), style="dim")))
        if self.filter_problem:
            parts.append((0, Text("  filter: " + self.filter_problem, style="bold red")))
        elif self.query_text:
            parts.append((0, Text.assemble(("  filter ", "bold"), (self.query_text, "bold reverse"),
                                           f" {len(self.query_one(ObjectTable).objects)} of {self.total}")))
        if self.last_pcap:
            parts.append((2, Text("  wrote " + self.last_pcap, style="dim")))
        return fit(parts, self.size.width or self.app.size.width)

    def _counts(self) -> str:
        waiting = len(self.listed)
        groups = len({obj.destination for obj in self.listed})
        carried = self.carried_counts
        if self._listing is None:
            bucket = ""
        elif self.list_problem:
            bucket = f"cannot list: {self.list_problem} · "
        elif self.listed_at is None:
            bucket = "listing... · "
        else:
            more = " (the first 1000)" if waiting >= MAX_KEYS else ""
            bucket = f"{waiting} waiting{more} for {formatting.plural(groups, 'destination')} · "
        return f"{bucket}{carried['sent']} sent, {carried['received']} received lately"

    def _status(self) -> None:
        self.query_one("#inspector-status", Static).update(self._title())

    def _bucket(self) -> BucketListing:
        if self._listing is None:
            raise RuntimeError("no bucket: pass --bucket NAME")
        return self._listing

    # Workers: S3 calls take milliseconds to seconds, so none of them runs on the UI thread.

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspector-list",
          description="list the bucket")
    def _list(self) -> None:
        try:
            listed = self._bucket()()
        except Exception as error:
            self.post_message(BucketFailed(str(error) or type(error).__name__))
            return
        self.post_message(ObjectsListed(tuple(listed)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspector-fetch",
          description="read one object")
    def _fetch(self, obj: BucketObject) -> None:
        try:
            body = self._bucket().store().get(obj.key)
        except Exception as error:
            self.app.call_from_thread(self.notify, f"reading {obj.key} failed: {error}", title="Bucket",
                                      severity="error", timeout=8)
            return
        self.post_message(ObjectFetched(obj, body))

    @work(thread=True, exclusive=False, exit_on_error=False, group="inspector-pcap",
          description="write a pcap file")
    def _write(self, objects: list[BucketObject], known: dict[str, bytes], what: str) -> None:
        packets: list[tuple[float, bytes]] = []
        skipped: Counter[str] = Counter()
        written = 0
        try:
            for obj in objects:
                body = known.get(obj.key)
                if body is None and not obj.gone and self._listing is not None:
                    body = self._bucket().store().get(obj.key)
                if body is None:
                    skipped["delivered before it was read"] += 1
                    continue
                try:
                    found = wire.decode(body).packets
                except wire.WireError:
                    skipped["not a packet format" if wire.body_format(body) == "unknown" else "damaged bundle"] += 1
                    continue
                stamp = (obj.sent_at or obj.last_modified).timestamp()
                packets.extend((stamp, packet) for packet in found)
                written += 1
            path = ""
            if packets:
                path = str(export_pcap(self.pcap_dir, what, self.clock(), packets)[0])
        except Exception as error:
            self.app.call_from_thread(self.notify, f"writing the pcap file failed: {error}", title="pcap",
                                      severity="error", timeout=10)
            return
        self.post_message(PcapWritten(path, written, len(packets), dict(skipped)))

    # The listing and the node's ring, merged into the rows shown.

    def _tick(self) -> None:
        if not self.is_current:
            return  # another screen is on top: list again when it is shown
        self._rebuild()
        self._start_listing()

    def _start_listing(self) -> None:
        if self._listing is not None and not self.listing:
            self.listing = True
            self._list()

    def _carried_objects(self) -> list[CarriedObject]:
        try:
            return list(self.recent())
        except Exception:  # the node may be gone or not up yet: its ring is simply empty then
            return []

    def _rebuild(self) -> None:
        """Merge the last listing with the node's ring, apply the filter and redraw the rows."""
        ring = self._carried_objects()
        self.carried = {obj.key: obj.body for obj in ring}
        carried = describe_carried(ring, self.key_prefix)
        self.carried_counts = Counter(obj.where for obj in carried)
        rows = merge(self.listed, carried, self.current)
        self.total = len(rows)
        shown_keys = {obj.key for obj in rows}
        self.bodies = {key: body for key, body in self.bodies.items() if key in shown_keys}
        self._seen = {key: seen for key, seen in self._seen.items() if key in shown_keys}
        if self.match is not None:
            # The selection too must match: what is shown, selected and written is what the filter lets by.
            rows = [obj for obj in rows if any(map(self.match, self._packets(obj)))]
        table = self.query_one(ObjectTable)
        table.show(rows, self.clock(), keep=self.current.key if self.current else None)
        self._status()
        selected = table.selected()
        if selected is None:
            self._show_nothing()
        elif self.current is None or selected.key != self.current.key or selected.gone != self.current.gone:
            self._select(selected)

    def _packets(self, obj: BucketObject) -> list[PacketSeen]:
        body = self._body(obj.key)
        cached = self._seen.get(obj.key)
        if cached is None or (body is not None and cached[0].protocol == "object"):
            cached = packets_of(obj, body)
            self._seen[obj.key] = cached
        return cached

    def _body(self, key: str) -> bytes | None:
        return self.bodies.get(key) or self.carried.get(key)

    # The selected object, in the structure and hex panes.

    def _select(self, obj: BucketObject) -> None:
        self.current = obj
        body = self._body(obj.key)
        if body is not None:
            self._show(obj, body)
        elif obj.gone or obj.key in self.gone:
            self._show_gone(obj)
        elif self._listing is not None:
            self.dissections = []
            self.query_one(LayerTree).show([], note=f"{obj.key}: reading...")
            self.query_one(HexView).show(b"", placeholder="reading...")
            self._fetch(obj)
        else:
            self._show_gone(obj)

    def _show_nothing(self) -> None:
        self.current = None
        self.dissections = []
        if self.match is not None:
            why = "no object matches the filter (Esc clears it)"
        elif self._listing is None:
            why = "the node has carried no object yet"
        else:
            why = "the bucket holds no object under this prefix and the node has carried none yet"
        self.query_one(LayerTree).show([], note=f"Nothing selected: {why}.")
        self.query_one(HexView).show(b"", placeholder="Nothing selected.")

    def _show_gone(self, obj: BucketObject) -> None:
        self.dissections = []
        self.query_one(LayerTree).show([], note=(
            f"{obj.key}: delivered and deleted before its bytes could be read. The node carries objects away "
            "within milliseconds: s on the dashboard holds its heartbeat slower so they wait."))
        self.query_one(HexView).show(b"", placeholder="Its bytes were never read.")

    def _show(self, obj: BucketObject, body: bytes) -> None:
        tree, hex_view = self.query_one(LayerTree), self.query_one(HexView)
        kind = wire.body_format(body)
        where = {"bucket": "waiting in the bucket", "sent": "sent by this node",
                 "received": "received by this node"}[obj.where]
        if obj.gone:
            where = "delivered since it was listed: the bytes read before"
        if obj.sealed:
            where += "; sealed in the bucket, shown as the node unsealed it"
        try:
            packets = wire.decode(body).packets
        except wire.WireError as error:
            self.dissections = []
            tree.show([], note=f"{obj.key}  ·  {where}  ·  {kind}: {error}")
            hex_view.show(body)
            return
        self.dissections = [dissect(packet) for packet in packets]
        count = formatting.plural(len(packets), "packet")
        tree.show(self.dissections,
                  note=f"{obj.key}  ·  {where}  ·  {kind}  ·  {count}  ·  {formatting.plural(len(body), 'byte')}")
        hex_view.show(packets[0])

    # What the workers and the widgets report.

    def on_objects_listed(self, message: ObjectsListed) -> None:
        self.listing = False
        self.list_problem = ""
        self.listed = [obj for obj in message.objects if obj.key not in self.gone]
        self.listed_at = self.clock()
        self._rebuild()

    def on_bucket_failed(self, message: BucketFailed) -> None:
        self.listing = False
        first = not self.list_problem
        self.list_problem = message.message
        self._status()
        if first:
            self.notify(f"listing the bucket failed: {message.message}", title="Bucket", severity="error",
                        timeout=8)

    def on_object_fetched(self, message: ObjectFetched) -> None:
        key = message.obj.key
        if message.body is None:
            # Delivered between the listing and the read: not a failure, the node did its job.
            self.gone.add(key)
            self.listed = [obj for obj in self.listed if obj.key != key]
            if self.current is not None and self.current.key == key:
                self._rebuild()
            return
        self.bodies[key] = message.body
        if self.current is not None and self.current.key == key:
            self._show(self.current, message.body)
        if self.match is not None:
            self._rebuild()

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        obj = self.query_one(ObjectTable).selected()
        if obj is not None and (self.current is None or obj.key != self.current.key):
            self._select(obj)

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted[Span]) -> None:
        span = message.node.data
        if span is not None and span.index < len(self.dissections):
            self.query_one(HexView).show(self.dissections[span.index].packet, span.offset, span.length)

    def on_pcap_written(self, message: PcapWritten) -> None:
        skipped = ", ".join(f"{count} {reason}" for reason, count in message.skipped.items())
        if not message.path:
            self.notify(f"Nothing written: no object shown holds a packet ({skipped or 'none shown'})",
                        title="pcap", severity="warning", timeout=8)
            return
        self.last_pcap = message.path
        self._status()
        written = f"{formatting.plural(message.packets, 'packet')} from {formatting.plural(message.objects, 'object')}"
        self.notify(f"{written} -> {message.path}"
                    + (f"\nskipped: {skipped}" if skipped else ""), title="pcap written", timeout=10)

    def on_input_changed(self, message: Input.Changed) -> None:
        self._apply_filter(message.value)

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self.query_one(ObjectTable).focus()

    def _apply_filter(self, text: str) -> None:
        self.query_text = text.strip()
        self.filter_problem = ""
        self.match = None
        if self.query_text:
            try:
                self.match = self.matcher(self.query_text)
            except ValueError as error:
                self.filter_problem = str(error)
        self._rebuild()

    # Actions.

    def action_refresh(self) -> None:
        """List the bucket again and read the node's ring."""
        self._rebuild()
        if self._listing is not None:
            self.listing = False
            self._start_listing()

    def action_filter(self) -> None:
        """Show only the objects whose packets match what is typed."""
        field = self.query_one("#inspector-filter", Input)
        field.display = True
        field.focus()

    def action_write_selected(self) -> None:
        """Write the selected object's packets to a pcap file."""
        obj = self.query_one(ObjectTable).selected()
        if obj is None:
            self.notify("No object selected", severity="warning", timeout=3)
            return
        self._write([obj], self._known([obj]), "object")

    def action_write_all(self) -> None:
        """Write the packets of every object shown to one pcap file."""
        objects = list(self.query_one(ObjectTable).objects)
        if not objects:
            self.notify("No object shown to write", severity="warning", timeout=3)
            return
        self._write(objects, self._known(objects), "all")

    def _known(self, objects: list[BucketObject]) -> dict[str, bytes]:
        return {obj.key: body for obj in objects if (body := self._body(obj.key)) is not None}

    def action_close(self) -> None:
        """Clear the filter; without one, back to the dashboard (or quit when the inspector is all there is)."""
        field = self.query_one("#inspector-filter", Input)
        if field.display or self.query_text:
            field.value = ""
            field.display = False
            self.query_one(ObjectTable).focus()
            self._apply_filter("")
        elif self.standalone:
            self.app.exit()
        else:
            self.dismiss()
