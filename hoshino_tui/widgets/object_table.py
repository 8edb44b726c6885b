"""The objects waiting in the bucket, grouped by destination, oldest first within each group."""

from __future__ import annotations

from datetime import UTC

from rich.text import Text
from textual.widgets import DataTable

from .. import formatting
from ..bucket import BucketObject

_COLUMNS = (("Destination", 40), ("Key (ULID)", 26), ("Sent (UTC)", 23), ("Size", 9), ("Age", 7))


class ObjectTable(DataTable[Text | str]):
    """One row per object; the destination is written once per group."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.objects: list[BucketObject] = []

    def on_mount(self) -> None:
        for label, width in _COLUMNS:
            self.add_column(label, width=width, key=label)

    def show(self, objects: list[BucketObject], now: float) -> None:
        """Replace the rows; now is the time ages are measured from."""
        self.clear()
        self.objects = list(objects)
        previous = None
        for index, obj in enumerate(self.objects):
            group = obj.destination or "(not an agent key)"
            stamp = obj.key.rsplit("/", 1)[-1] if obj.destination else obj.key
            sent = obj.sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if obj.sent_at else "-"
            self.add_row(
                Text(group if group != previous else "", style="bold"), stamp, sent,
                Text(formatting.size(obj.size), justify="right"),
                Text(formatting.age(now - obj.last_modified.timestamp()), justify="right"),
                key=str(index),
            )
            previous = group

    def selected(self) -> BucketObject | None:
        """The object on the highlighted row."""
        if not self.row_count:
            return None
        return self.objects[self.cursor_row]
