"""The node's IPv6 address: the network prefix plus the first 64 bits of the machine-id."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")


class AddressError(ValueError):
    """The machine-id cannot give an address."""


def read_machine_id(path: str | Path = "/etc/machine-id") -> str:
    """The 32 hex digits of a machine-id file."""
    try:
        text = Path(path).read_text().strip().lower()
    except OSError as error:
        raise AddressError(f"cannot read machine-id {path}: {error.strerror}; pass --address") from None
    if not _MACHINE_ID.match(text):
        raise AddressError(f"{path} does not hold 32 hex digits; pass --address")
    return text


def node_address(network: ipaddress.IPv6Network, machine_id: str) -> ipaddress.IPv6Address:
    """Network prefix + first 64 bits (16 hex digits) of the machine-id as interface identifier."""
    if network.prefixlen > 64:
        raise AddressError(f"network {network} is longer than /64")
    interface_id = int(machine_id[:16], 16)
    return ipaddress.IPv6Address(int(network.network_address) | interface_id)
