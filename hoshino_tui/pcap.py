"""Writes packets to a pcap file that tcpdump and Wireshark open."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import dpkt

LINKTYPE_RAW = 101
"""Raw IP, the version read from the first nibble. Chosen over dpkt.pcap.DLT_RAW (12), whose number
differs between platforms, and over LINKTYPE_IPV6 (229), which older tcpdump builds do not know."""
SNAPLEN = 262_144
"""tcpdump's own default; above the largest IPv6 packet a TUN carries (MTU 65535)."""


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]]) -> int:
    """Write (timestamp, IPv6 packet) pairs to path; return how many were written."""
    count = 0
    with path.open("wb") as file:
        writer = dpkt.pcap.Writer(file, snaplen=SNAPLEN, linktype=LINKTYPE_RAW)
        for timestamp, packet in packets:
            writer.writepkt(packet, ts=timestamp)
            count += 1
    return count
