"""The tunnel's per-packet verdicts on both paths, read from the fixed header only (agent.ip).

Nothing on the path between the device and the bucket runs a decoder whose cost a sender controls:
the verdicts below read the fixed header and ask the router. The layered decode (agent.dissect)
is for people, and runs only when a front end asks for packet events.
"""

from __future__ import annotations

import ipaddress
import time

from agent.events import SNAPLEN, Direction, PacketSeen, Verdict
from agent.ip import Header, PacketError, parse_header, scope_reason
from agent.router import Route, Router

__all__ = ["Header", "PacketError", "egress_verdict", "ingress_verdict", "parse_header", "seen"]


def egress_verdict(header: Header, router: Router) -> tuple[str, Route | None]:
    """Why a packet from the device must not be sent ('' when it may be), and its route (the node to send it to)."""
    destination = header.destination
    if reason := scope_reason(destination):
        return reason, None
    if router.is_own(destination):
        return "own_address", None
    if not router.may_originate(header.source):
        return "foreign_source", None
    route = router.route(destination)
    if route is None:
        return "no_route", None
    return "", route


def ingress_verdict(header: Header, router: Router, mtu: int, sender: ipaddress.IPv6Address | None = None) -> str:
    """Why a packet from the bucket must not be delivered, or '' when it may be.

    sender is the authenticated sender of a sealed object: the packet's source must be one of its
    addresses or lie in its routes; its destination must be this node or a prefix this node carries.
    """
    if not router.routed_here(header.destination):
        return "not_routed_here"
    if reason := router.source_verdict(header.source, sender):
        return reason
    if header.length > mtu:
        return "too_long"
    return ""


def seen(data: bytes, direction: Direction, key: str, verdict: Verdict, reason: str = "") -> PacketSeen:
    """The event that tells a front end about a packet: its summary comes from the one decoder.

    The decoder is imported here, when a front end first asks: a headless node never loads it.
    """
    from agent.dissect import dissect

    decoded = dissect(data, checksums=False)
    source = destination = ""
    if decoded.version:  # what the decoder could not read as IPv6 or IPv4 has no addresses to show
        ip = decoded.layers[0]
        source, destination = str(ip.field("Source").value), str(ip.field("Destination").value)
    return PacketSeen(
        time.time(), direction, source, destination, decoded.protocol, decoded.summary, len(data), key,
        verdict, reason, bytes(data[:SNAPLEN]),
    )
