"""The packet filter language: each kind of word, negation, ANDing, and clear errors."""

from __future__ import annotations

import ipaddress

import pytest

from agent.events import PacketSeen
from agent.lab.recorded import LOCAL, PEER, echo, packet_event, recorded_events, router_solicitation, tcp, udp
from hoshino_tui.filtering import EVERYTHING, FilterError, matches, parse_filter, ports

NETWORK = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
PING = packet_event(1.0, echo(LOCAL, PEER, 7, 1), "out")
REPLY = packet_event(1.1, echo(PEER, LOCAL, 7, 1, reply=True), "in", "delivered", key=f"{LOCAL}/01ABC")
SYN = packet_event(1.2, tcp(LOCAL, PEER, 40005, 8081, 0x02, 1000), "out")
DNS = packet_event(1.3, udp(LOCAL, PEER, 5353, 5353, b"x"), "out")
SOLICIT = packet_event(1.4, router_solicitation("fe80::a"), "out", "ignored", "multicast")
BAD = PacketSeen(1.5, "in", "", LOCAL, "object", "unknown object format", 0, "k", "dropped", "bad_object")
ALL = (PING, REPLY, SYN, DNS, SOLICIT, BAD)


def kept(text: str, network: ipaddress.IPv6Network | None = NETWORK) -> list[PacketSeen]:
    packet_filter = parse_filter(text, network)
    return [packet for packet in ALL if packet_filter.matches(packet)]


def test_protocol_direction_and_verdict_words() -> None:
    assert kept("udp") == [DNS]
    assert kept("TCP") == [SYN]
    assert kept("icmp") == kept("icmpv6") == [PING, REPLY, SOLICIT]
    assert kept("in") == [REPLY, BAD]
    assert kept("dropped") == [BAD]
    assert kept("ignored") == [SOLICIT]


def test_port_matches_either_end() -> None:
    assert kept("port 8081") == [SYN]
    assert kept("port 5353") == [DNS]
    assert kept("port 1") == []
    assert ports(SYN) == (40005, 8081)
    assert ports(PING) is None


def test_host_src_dst_and_short_addresses() -> None:
    assert kept(f"host {PEER}") == [PING, REPLY, SYN, DNS]
    assert kept("host ::b") == [PING, REPLY, SYN, DNS]  # ::b within the node's network
    assert kept("src ::b") == [REPLY]
    assert kept("dst ::a") == [REPLY, BAD]
    assert kept("ff02::2") == [SOLICIT]  # a bare address is a host
    # Without a network a short address matches any address with that interface identifier.
    assert kept("src ::a", network=None) == [PING, SYN, DNS, SOLICIT]


def test_words_are_anded_and_negated() -> None:
    assert kept("out icmpv6") == [PING, SOLICIT]
    assert kept("out icmpv6 not ignored") == [PING]
    assert kept("-icmpv6 -dropped") == [SYN, DNS]
    assert kept("!udp out not icmp") == [SYN]


def test_free_text_looks_in_summary_reason_and_key() -> None:
    assert kept("echo-reply") == [REPLY]
    assert kept("multicast") == [SOLICIT]
    assert kept("01abc") == [REPLY]
    assert kept('"unknown object"') == [BAD]
    assert kept("SYN") == [SYN]


def test_empty_filter_matches_everything() -> None:
    assert not EVERYTHING.active
    assert not parse_filter("   ").active
    assert kept("") == list(ALL)
    assert matches(DNS, "udp port 5353")


@pytest.mark.parametrize(("text", "says"), [
    ("port", "needs a number"),
    ("port http", "from 0 to 65535"),
    ("port 70000", "from 0 to 65535"),
    ("host", "needs an address"),
    ("host ::zz", "not an IPv6 address"),
    ('"open', "close the quote"),
    ("udp not", "needs a word"),
])
def test_bad_filters_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(FilterError, match=says):
        parse_filter(text)


def test_filters_the_recorded_run() -> None:
    packets = [event for event in recorded_events() if isinstance(event, PacketSeen)]
    udp_only = [packet for packet in packets if parse_filter("udp").matches(packet)]
    assert udp_only and all(packet.protocol == "UDP" for packet in udp_only)
    assert len(udp_only) == sum(packet.protocol == "UDP" for packet in packets)
