"""Marks a TCP segment seen again as a retransmission, as Wireshark does, so it does not read as a duplicate.

A segment is the same when its flow and direction, sequence number, length and SYN/FIN flags are: the
kernel sends it again when its acknowledgment was late. Pure ACKs (no data, no SYN or FIN) repeat by
design and are never marked. Memory is bounded: the newest MEMORY segments are remembered.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict

from agent.events import PacketSeen

MARK = "[TCP Retransmission] "
MEMORY = 4096
"""Segments remembered: a few seconds of a busy flow, far more than a retransmission timeout apart."""
CROSSING = ("sent", "delivered")
"""Only packets that crossed the bucket: one dropped and then sent again is not a retransmission."""
_SEGMENT = re.compile(r"TCP (\d+)->(\d+) \[([A-Z,]*)\] seq=(\d+) .*len=(\d+)$")
"""The decoder's one-line summary of a TCP segment (agent.dissect)."""

Segment = tuple[str, str, str, str, str, str, str, bool, bool]


def segment_of(packet: PacketSeen) -> Segment | None:
    """What identifies the packet's TCP segment, or None when it is not one that can be retransmitted."""
    if packet.protocol != "TCP" or packet.verdict not in CROSSING:
        return None
    found = _SEGMENT.fullmatch(packet.summary)
    if found is None:
        return None
    sport, dport, flags, seq, length = found.groups()
    names = flags.split(",")
    syn, fin = "SYN" in names, "FIN" in names
    if length == "0" and not (syn or fin):
        return None
    return (packet.direction, packet.source, sport, packet.destination, dport, seq, length, syn, fin)


class Retransmissions:
    """Remembers the last MEMORY segments and marks a packet that repeats one of them."""

    def __init__(self, memory: int = MEMORY) -> None:
        self.memory = memory
        self.count = 0
        """Retransmissions marked so far."""
        self._seen: OrderedDict[Segment, None] = OrderedDict()

    def mark(self, packet: PacketSeen) -> PacketSeen:
        """The packet, its summary marked when it repeats a segment seen before."""
        segment = segment_of(packet)
        if segment is None:
            return packet
        if segment in self._seen:
            self._seen.move_to_end(segment)
            self.count += 1
            return dataclasses.replace(packet, summary=MARK + packet.summary)
        self._seen[segment] = None
        if len(self._seen) > self.memory:
            self._seen.popitem(last=False)
        return packet
