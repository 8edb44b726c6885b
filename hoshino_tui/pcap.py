"""Writes packets to a pcap file that tcpdump and Wireshark open, under a name no other export has taken."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import dpkt

LINKTYPE_RAW = 101
"""Raw IP, the version read from the first nibble. Chosen over dpkt.pcap.DLT_RAW (12), whose number
differs between platforms, and over LINKTYPE_IPV6 (229), which older tcpdump builds do not know."""
SNAPLEN = 262_144
"""tcpdump's own default; above the largest IPv6 packet a TUN carries (MTU 65535)."""


def _write(file: BinaryIO, packets: Iterable[tuple[float, bytes]]) -> int:
    writer = dpkt.pcap.Writer(file, snaplen=SNAPLEN, linktype=LINKTYPE_RAW)
    count = 0
    for timestamp, packet in packets:
        writer.writepkt(packet, ts=timestamp)
        count += 1
    return count


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]]) -> int:
    """Write (timestamp, IPv6 packet) pairs to path; return how many were written."""
    with path.open("wb") as file:
        return _write(file, packets)


def export_pcap(directory: Path, what: str, when: float, packets: Iterable[tuple[float, bytes]]) -> tuple[Path, int]:
    """Write packets to a new file hoshino-{what}-{time}.pcap in directory (-2, -3... when that name is taken);
    return its absolute path and how many packets it holds. Never overwrites a file."""
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%d-%H%M%S")
    directory = directory.expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for serial in range(1, 10_000):
        path = directory / f"hoshino-{what}-{stamp}{'' if serial == 1 else f'-{serial}'}.pcap"
        try:
            file = path.open("xb")
        except FileExistsError:
            continue
        with file:
            return path, _write(file, packets)
    raise FileExistsError(f"every name for hoshino-{what}-{stamp}.pcap in {directory} is taken")
