"""The inspector's objects, grouped by where they are and their destination, oldest first within each group."""

from __future__ import annotations

import ipaddress
from datetime import UTC

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from .. import formatting
from ..bucket import BucketObject
from .packet_columns import short_address

COLUMNS = (("Where", 9), ("Destination", 0), ("Sent (UTC)", 12), ("Size", 8), ("Age", 5), ("Key (ULID)", 26))
"""Labels and widths; the destination's is its content's."""
DROP_ORDER = ("Sent (UTC)", "Size", "Age")
"""Left out in this order when the width is short: the key's ULID tells the time sent, to the millisecond."""
PADDING = 2
"""Cells a column takes beyond its width: the table's padding on either side."""
SCROLLBAR = 2
NOT_AN_AGENT_KEY = "(not an agent key)"
_WHERE_STYLE = {"bucket": "bold", "sent": "cyan", "received": "green"}


def where(obj: BucketObject) -> Text:
    """Where the object is: waiting in the bucket, carried by the node, or delivered since it was listed."""
    if obj.gone:
        return Text("delivered" if obj.where == "bucket" else "gone", style="dim italic")
    return Text(obj.where, style=_WHERE_STYLE[obj.where])


def fitted_columns(destination: int, width: int) -> list[tuple[str, int]]:
    """The columns that fit width cells, the destination column destination cells wide (its label
    shortened to fit): the key always, the others left out in DROP_ORDER until the rest fit."""
    def layout(label: str) -> list[tuple[str, int]]:
        columns = [(label, max(destination, len(label))) if name == "Destination" else (name, size)
                   for name, size in COLUMNS]
        for name in DROP_ORDER:
            if sum(size + PADDING for _, size in columns) <= width:
                break
            columns = [column for column in columns if column[0] != name]
        return columns

    full, short = layout("Destination"), layout("Dest")
    return full if len(full) == len(short) else short


class ObjectTable(DataTable[Text | str]):
    """One row per object; where and destination are written once per group, the columns fitted to the width."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.objects: list[BucketObject] = []
        self.network: ipaddress.IPv6Network | None = None
        """The node's network: destinations inside it are shown by their interface identifier."""
        self._now = 0.0
        self._columns: list[tuple[str, int]] = []

    def on_resize(self, event: events.Resize) -> None:
        keep = self.objects[self.cursor_row].key if self.objects and self.row_count else None
        self.show(self.objects, self._now, keep)

    def destination(self, obj: BucketObject) -> str:
        """The destination as the table writes it."""
        return short_address(obj.destination, self.network) if obj.destination else NOT_AN_AGENT_KEY

    def show(self, objects: list[BucketObject], now: float, keep: str | None = None) -> None:
        """Replace the rows (now is the time ages are measured from), the cursor staying on the key keep."""
        scroll_y = self.scroll_y
        self._now = now
        self.objects = list(objects)
        widest = max((len(self.destination(obj)) for obj in self.objects), default=0)
        columns = fitted_columns(widest, self.size.width - SCROLLBAR) if self.size.width else list(COLUMNS)
        if columns != self._columns:
            self.clear(columns=True)
            for label, width in columns:
                self.add_column(label, width=width or len(label), key=label)
            self._columns = columns
        else:
            self.clear()
        shown = {label for label, _ in columns}
        previous = None
        for index, obj in enumerate(self.objects):
            group = (obj.where, obj.gone, self.destination(obj))
            stamp = obj.key.rsplit("/", 1)[-1] if obj.destination else obj.key
            fresh = group != previous
            cells: dict[str, Text | str] = {
                "Where": where(obj) if fresh else "",
                "Destination": Text(group[2] if fresh else "", style="bold"),
                "Sent (UTC)": obj.sent_at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3] if obj.sent_at else "-",
                "Size": Text(formatting.size(obj.size), justify="right"),
                "Age": Text(formatting.age(now - obj.last_modified.timestamp()), justify="right"),
                "Key (ULID)": stamp,
            }
            cells["Dest"] = cells["Destination"]
            self.add_row(*(cells[label] for label, _ in columns if label in shown), key=str(index))
            previous = group
        row = self.row_of(keep) if keep is not None else None
        if row is not None:
            self.scroll_to(y=scroll_y, animate=False, immediate=True)
            self.move_cursor(row=row, animate=False)

    def row_of(self, key: str) -> int | None:
        """The row that shows key, if one does."""
        return next((index for index, obj in enumerate(self.objects) if obj.key == key), None)

    def selected(self) -> BucketObject | None:
        """The object on the highlighted row."""
        if not self.row_count:
            return None
        return self.objects[self.cursor_row]
