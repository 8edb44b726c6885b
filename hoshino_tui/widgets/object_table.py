"""The inspector's objects, grouped by where they are and their destination, oldest first within each group."""

from __future__ import annotations

from datetime import UTC

from rich.text import Text
from textual.widgets import DataTable

from .. import formatting
from ..bucket import BucketObject

_COLUMNS = (("Where", 9), ("Destination", 24), ("Sent (UTC)", 12), ("Size", 9), ("Age", 7), ("Key (ULID)", 26))
_WHERE_STYLE = {"bucket": "bold", "sent": "cyan", "received": "green"}


def where(obj: BucketObject) -> Text:
    """Where the object is: waiting in the bucket, carried by the node, or delivered since it was listed."""
    if obj.gone:
        return Text("delivered" if obj.where == "bucket" else "gone", style="dim italic")
    return Text(obj.where, style=_WHERE_STYLE[obj.where])


class ObjectTable(DataTable[Text | str]):
    """One row per object; where and destination are written once per group."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.objects: list[BucketObject] = []

    def on_mount(self) -> None:
        for label, width in _COLUMNS:
            self.add_column(label, width=width, key=label)

    def show(self, objects: list[BucketObject], now: float, keep: str | None = None) -> None:
        """Replace the rows (now is the time ages are measured from), the cursor staying on the key keep."""
        scroll_y = self.scroll_y
        self.clear()
        self.objects = list(objects)
        previous = None
        for index, obj in enumerate(self.objects):
            group = (obj.where, obj.gone, obj.destination or "(not an agent key)")
            stamp = obj.key.rsplit("/", 1)[-1] if obj.destination else obj.key
            sent = obj.sent_at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3] if obj.sent_at else "-"
            fresh = group != previous
            self.add_row(
                where(obj) if fresh else "",
                Text(group[2] if fresh else "", style="bold"), sent,
                Text(formatting.size(obj.size), justify="right"),
                Text(formatting.age(now - obj.last_modified.timestamp()), justify="right"),
                stamp, key=str(index),
            )
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
