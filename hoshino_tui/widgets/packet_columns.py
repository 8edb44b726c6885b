"""Which columns of the packet table fit a width, and how a cell is cut to fit its column."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..retransmissions import MARK

INFO_MIN = 22
"""Columns are dropped, least useful first, until Info has this many cells."""
INFO_WANT = 36
"""...or, when its text is longer, this many: a TCP segment's flags and sequence numbers before the No."""
ADDRESS_MIN = 12


@dataclass(frozen=True, slots=True)
class Column:
    """A column before Info; drop ranks the droppable ones (1 goes first), 0 never goes."""

    key: str
    labels: tuple[str, ...]
    """Header labels, longest first: the longest that fits the content's width is used."""
    right: bool = False
    drop: int = 0


COLUMNS = (
    Column("no", ("No.",), right=True, drop=2),
    Column("time", ("Time",), right=True),
    Column("dir", ("Dir",), drop=4),
    Column("source", ("Source", "Src")),
    Column("destination", ("Destination", "Dest", "Dst")),
    Column("proto", ("Proto",)),
    Column("len", ("Len",), right=True, drop=3),
    Column("verdict", ("Verdict",)),
    Column("reason", ("Reason",), drop=1),
)
"""Info comes last, as in Wireshark, and takes the rest of the width."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns are shown and how wide; addresses in full or by interface identifier."""

    columns: tuple[tuple[Column, int], ...]
    info: int
    full_addresses: bool
    reason_in_info: bool


def layout_columns(widest: Mapping[str, int], width: int) -> Layout:
    """Fit the columns to width: drop the least useful until Info has INFO_MIN cells, show addresses
    in full when Info still fits its longest text, and cut long addresses only as a last resort."""

    def column_width(column: Column, full: bool, cap: int = 0) -> int:
        key = column.key
        if key in ("source", "destination"):
            content = widest.get(f"{key}_{'full' if full else 'short'}", 0)
            if cap:
                content = min(content, cap)
        else:
            content = widest.get(key, 0)
        return max(content, min(len(label) for label in column.labels))

    def room(columns: list[Column], full: bool, cap: int = 0) -> int:
        return width - sum(column_width(column, full, cap) + 1 for column in columns)

    # A droppable column with nothing in it (no packet has a reason) is left out at once.
    kept = [column for column in COLUMNS if not column.drop or widest.get(column.key, 0)]
    info_wants = max(INFO_MIN, min(INFO_WANT, widest.get("info", 0)))
    while room(kept, False) < info_wants and any(column.drop for column in kept):
        kept.remove(min((column for column in kept if column.drop), key=lambda column: column.drop))
    reason_in_info = COLUMNS[-1] not in kept and widest.get("reason", 0) > 0
    wanted = widest.get("info_reason" if reason_in_info else "info", 0)
    full = widest.get("source_full", 0) + widest.get("destination_full", 0) > \
        widest.get("source_short", 0) + widest.get("destination_short", 0) and room(kept, True) >= wanted
    cap = 0
    if room(kept, full) < info_wants:
        # A rare long address (a multicast group, a peer beyond the network) is cut in the middle
        # before Info is: the columns shrink together, never below ADDRESS_MIN.
        cap = max(widest.get("source_short", 0), widest.get("destination_short", 0))
        while cap > ADDRESS_MIN and room(kept, full, cap) < info_wants:
            cap -= 1
    columns = tuple((column, column_width(column, full, cap)) for column in kept)
    return Layout(columns, max(0, room(kept, full, cap)), full, reason_in_info)


def info_text(summary: str, protocol: str) -> str:
    """The Info column's text: the summary without the protocol's name, which the Proto column shows
    (a retransmission's mark stays in front)."""
    mark = MARK if summary.startswith(MARK) else ""
    rest = summary[len(mark):]
    if rest.startswith(protocol + " "):
        rest = rest[len(protocol) + 1:]
    return mark + rest


def short_address(text: str, network: ipaddress.IPv6Network | None) -> str:
    """Inside the node's network the prefix says nothing: show '::' and the interface identifier."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return text
    if network is not None and network.prefixlen == 64 and address in network:
        return ipaddress.IPv6Address(int(address) & ((1 << 64) - 1)).compressed
    return address.compressed


cached_short_address = lru_cache(maxsize=4096)(short_address)
"""short_address for every row drawn: a table shows the same few addresses again and again."""


def fit(text: str, width: int, middle: bool = False, right: bool = False) -> str:
    """Pad text to width, or cut it with an ellipsis: at the end, or in the middle for an address."""
    if len(text) <= width:
        return text.rjust(width) if right else text.ljust(width)
    if width <= 1:
        return "…"[:width]
    if middle:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head):]
    return text[:width - 1] + "…"
