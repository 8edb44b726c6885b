"""The inspector: objects in the bucket, the selected one's layers, and its bytes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, Tree

from agent import wire
from agent.dissect import Dissection, dissect

from ..bucket import BucketObject, StoreLike, describe
from ..messages import BucketFailed, ObjectFetched, ObjectsListed, PcapWritten
from ..pcap import write_pcap
from ..widgets.hex_view import HexView
from ..widgets.layer_tree import LayerTree, Span
from ..widgets.object_table import ObjectTable

MAX_KEYS = 1000


class InspectorScreen(Screen[None]):
    """List, structure and hex, as termshark and Wireshark show a capture."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="List the bucket again"),
        Binding("w", "write_selected", "Write pcap", id="write-selected",
                tooltip="Write the selected object's packets to a pcap file"),
        Binding("W", "write_all", "Write all", id="write-all",
                tooltip="Write every listed object's packets to a pcap file"),
        Binding("escape", "close", "Back", id="close-inspector"),
    ]

    def __init__(self, store_factory: Callable[[], StoreLike] | None, *, bucket: str = "",
                 key_prefix: str = "", clock: Callable[[], float], pcap_dir: Path = Path("."),
                 standalone: bool = False) -> None:
        super().__init__()
        self._store_factory = store_factory
        self._store: StoreLike | None = None
        self._store_lock = threading.Lock()
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.clock = clock
        self.pcap_dir = pcap_dir
        self.standalone = standalone
        self.bodies: dict[str, bytes] = {}
        self.dissections: list[Dissection] = []
        self.current: BucketObject | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._title("listing..."), id="inspector-status")
        yield ObjectTable(id="objects")
        with Horizontal(id="inspector-views"):
            yield LayerTree(id="inspector-tree")
            yield HexView(id="inspector-hex")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ObjectTable).border_title = "Objects"
        self.query_one(LayerTree).border_title = "Structure"
        self.query_one(HexView).border_title = "Bytes"
        self.query_one(ObjectTable).focus()
        self.action_refresh()

    def _title(self, status: str) -> Text:
        return Text.assemble((" inspector ", "bold reverse"), "  bucket ", (self.bucket or "-", "bold"),
                             f"  prefix {self.key_prefix!r}  " if self.key_prefix else "  ", (status, "dim"))

    def _status(self, status: str) -> None:
        self.query_one("#inspector-status", Static).update(self._title(status))

    def _open_store(self) -> StoreLike:
        with self._store_lock:
            if self._store is None:
                if self._store_factory is None:
                    raise RuntimeError("no bucket: pass --bucket NAME")
                self._store = self._store_factory()
            return self._store

    # Workers: S3 calls take milliseconds to seconds, so none of them runs on the UI thread.

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspector-list",
          description="list the bucket")
    def _list(self) -> None:
        try:
            infos = self._open_store().list_objects(prefix=self.key_prefix, max_keys=MAX_KEYS)
        except Exception as error:
            self.post_message(BucketFailed(f"listing the bucket failed: {error}"))
            return
        self.post_message(ObjectsListed(tuple(describe(infos, self.key_prefix))))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspector-fetch",
          description="read one object")
    def _fetch(self, obj: BucketObject) -> None:
        try:
            body = self.bodies.get(obj.key) or self._open_store().get(obj.key)
        except Exception as error:
            self.post_message(BucketFailed(f"reading {obj.key} failed: {error}"))
            return
        if body is None:
            self.post_message(BucketFailed(f"{obj.key} is gone: delivered since the listing (r lists again)"))
            return
        self.post_message(ObjectFetched(obj, body))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspector-pcap",
          description="write a pcap file")
    def _write(self, objects: list[BucketObject], path: Path) -> None:
        packets: list[tuple[float, bytes]] = []
        try:
            for obj in objects:
                body = self.bodies.get(obj.key) or self._open_store().get(obj.key)
                if body is None:
                    continue  # delivered since the listing: nothing left to write
                stamp = (obj.sent_at or obj.last_modified).timestamp()
                packets.extend((stamp, packet) for packet in wire.decode(body).packets)
            write_pcap(path, packets)
        except Exception as error:
            self.post_message(BucketFailed(f"writing {path} failed: {error}"))
            return
        self.post_message(PcapWritten(str(path), len(objects), len(packets)))

    def on_objects_listed(self, message: ObjectsListed) -> None:
        table = self.query_one(ObjectTable)
        table.show(list(message.objects), self.clock())
        groups = len({obj.destination for obj in message.objects})
        more = " (first 1000)" if len(message.objects) >= MAX_KEYS else ""
        self._status(f"{len(message.objects)} objects{more} for {groups} destinations")
        if not message.objects:
            self.query_one(LayerTree).show([], note="The bucket holds no objects under this prefix.")
            self.query_one(HexView).show(b"")

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        obj = self.query_one(ObjectTable).selected()
        if obj is not None and obj != self.current:
            self.current = obj
            self._fetch(obj)

    def on_object_fetched(self, message: ObjectFetched) -> None:
        if message.obj != self.current:
            return
        self.bodies[message.obj.key] = message.body
        tree, hex_view = self.query_one(LayerTree), self.query_one(HexView)
        kind = wire.body_format(message.body)
        try:
            packets = wire.decode(message.body).packets
        except wire.WireError as error:
            self.dissections = []
            tree.show([], note=f"{kind}: {error}")
            hex_view.show(message.body)
            return
        self.dissections = [dissect(packet) for packet in packets]
        count = f"{len(packets)} packet{'s' if len(packets) > 1 else ''}"
        tree.show(self.dissections, note=f"{message.obj.key}  ·  {kind}  ·  {count}  ·  {len(message.body)} bytes")
        hex_view.show(packets[0])

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted[Span]) -> None:
        span = message.node.data
        if span is not None and span.index < len(self.dissections):
            self.query_one(HexView).show(self.dissections[span.index].packet, span.offset, span.length)

    def on_bucket_failed(self, message: BucketFailed) -> None:
        self._status("failed")
        self.notify(message.message, title="Bucket", severity="error", timeout=8)

    def on_pcap_written(self, message: PcapWritten) -> None:
        self._status(f"wrote {message.path}")
        self.notify(f"{message.packets} packets from {message.objects} objects -> {message.path}",
                    title="pcap written", timeout=6)

    def action_refresh(self) -> None:
        """List the bucket again."""
        self._status("listing...")
        self.current = None
        self._list()

    def action_write_selected(self) -> None:
        """Write the selected object's packets to a pcap file."""
        obj = self.query_one(ObjectTable).selected()
        if obj is None:
            self.notify("No object selected", severity="warning", timeout=3)
            return
        self._write([obj], self._pcap_path("object"))

    def action_write_all(self) -> None:
        """Write every listed object's packets to one pcap file."""
        objects = self.query_one(ObjectTable).objects
        if not objects:
            self.notify("Nothing listed to write", severity="warning", timeout=3)
            return
        self._write(list(objects), self._pcap_path("all"))

    def _pcap_path(self, what: str) -> Path:
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%d-%H%M%S")
        return self.pcap_dir / f"hoshino-{what}-{stamp}.pcap"

    def action_close(self) -> None:
        """Back to the dashboard, or quit when the inspector is all there is."""
        if self.standalone:
            self.app.exit()
        else:
            self.dismiss()
