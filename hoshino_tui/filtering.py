"""A small filter language over packet events: `udp`, `port 8081`, `host ::b`, `dropped`; words are ANDed."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from agent.events import PacketSeen

Test = Callable[[PacketSeen], bool]

FILTER_HELP: tuple[tuple[str, str], ...] = (
    ("udp  tcp  icmpv6", "the protocol (icmp is icmpv6)"),
    ("in  out", "the direction"),
    ("sent  delivered  ignored  dropped", "the verdict"),
    ("port N", "TCP or UDP, source or destination port N"),
    ("host ADDR", "source or destination ADDR; ::b is ::b in the node's network"),
    ("src ADDR  dst ADDR", "the source only, the destination only"),
    ("not WORD  -WORD", "packets the word does not match"),
    ("other words", "text in the summary, an address, the reason or the object key; \"quote\" spaces"),
)
"""The language, word by word, for the help screen. Every word must match (AND)."""

_PROTOCOLS = {"udp": "udp", "tcp": "tcp", "icmpv6": "icmpv6", "icmp": "icmpv6"}
_VERDICTS = ("sent", "delivered", "ignored", "dropped")
_DIRECTIONS = ("in", "out")
_PORTS = re.compile(r"^(?:TCP|UDP) (\d+)->(\d+)")
"""The agent's one-line summary names the ports: 'TCP 40005->8081 [SYN] ...', 'UDP 5353->5353 len=14'."""
_IID_MASK = (1 << 64) - 1


class FilterError(ValueError):
    """A filter that cannot be read; the message says which word and why."""


@dataclass(frozen=True)
class PacketFilter:
    """A parsed filter; matches(packet) is true when every word matches."""

    text: str
    tests: tuple[Test, ...] = field(default=(), repr=False, compare=False)

    @property
    def active(self) -> bool:
        """False for the empty filter, which matches everything."""
        return bool(self.tests)

    def matches(self, packet: PacketSeen) -> bool:
        """Whether packet passes every word of the filter."""
        return all(test(packet) for test in self.tests)


EVERYTHING = PacketFilter("")


def parse_filter(text: str, network: ipaddress.IPv6Network | None = None) -> PacketFilter:
    """Read a filter; network (a /64) gives short addresses such as ::b their prefix.

    Raises FilterError for a word that needs an argument it lacks, a bad port or address,
    or an unbalanced quote.
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise FilterError(f"{error}: close the quote") from None
    tests: list[Test] = []
    negate = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        lower = word.lower()
        if lower in ("not", "!") and not negate:
            negate = True
            continue
        if lower.startswith(("-", "!")) and len(word) > 1 and not negate:
            negate, word, lower = True, word[1:], lower[1:]
        if lower in ("port", "host", "src", "dst"):
            if index >= len(words):
                raise FilterError(f"'{word}' needs {'a number' if lower == 'port' else 'an address'} after it")
            argument = words[index]
            index += 1
            test = _port_test(argument) if lower == "port" else _host_test(lower, argument, network)
        else:
            test = _word_test(word, network)
        tests.append(_negated(test) if negate else test)
        negate = False
    if negate:
        raise FilterError("'not' needs a word after it")
    return PacketFilter(text.strip(), tuple(tests))


def matches(packet: PacketSeen, text: str, network: ipaddress.IPv6Network | None = None) -> bool:
    """Whether packet passes the filter text (parse once with parse_filter when matching many)."""
    return parse_filter(text, network).matches(packet)


def ports(packet: PacketSeen) -> tuple[int, int] | None:
    """The source and destination port of a TCP or UDP packet, read from its summary."""
    found = _PORTS.match(packet.summary)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _negated(test: Test) -> Test:
    return lambda packet: not test(packet)


def _port_test(argument: str) -> Test:
    if not argument.isdigit() or int(argument) > 65535:
        raise FilterError(f"port needs a number from 0 to 65535, not '{argument}'")
    port = int(argument)

    def test(packet: PacketSeen) -> bool:
        found = ports(packet)
        return found is not None and port in found

    return test


def _host_test(kind: str, argument: str, network: ipaddress.IPv6Network | None) -> Test:
    try:
        wanted = _address_matcher(argument, network)
    except ValueError:
        raise FilterError(f"'{argument}' is not an IPv6 address") from None
    if kind == "src":
        return lambda packet: wanted(packet.source)
    if kind == "dst":
        return lambda packet: wanted(packet.destination)
    return lambda packet: wanted(packet.source) or wanted(packet.destination)


def _word_test(word: str, network: ipaddress.IPv6Network | None) -> Test:
    lower = word.lower()
    if lower in _PROTOCOLS:
        protocol = _PROTOCOLS[lower]
        return lambda packet: packet.protocol.lower() == protocol
    if lower in _VERDICTS:
        return lambda packet: packet.verdict == lower
    if lower in _DIRECTIONS:
        return lambda packet: packet.direction == lower
    if ":" in word:
        try:
            wanted = _address_matcher(word, network)
        except ValueError:
            pass  # not an address after all (e.g. 'fd5e:59b8'): look for the text instead
        else:
            return lambda packet: wanted(packet.source) or wanted(packet.destination)

    def test(packet: PacketSeen) -> bool:
        return any(lower in text.lower() for text in (
            packet.summary, packet.source, packet.destination, packet.reason, packet.key, packet.protocol))

    return test


def _address_matcher(text: str, network: ipaddress.IPv6Network | None) -> Callable[[str], bool]:
    """A test of an address string; an address with no prefix (::b) is an interface identifier."""
    value = int(ipaddress.IPv6Address(text))
    if value >> 64:
        return lambda address: _address_int(address) == value
    if network is not None and network.prefixlen <= 64:
        full = int(network.network_address) | value
        return lambda address: _address_int(address) == full
    return lambda address: (found := _address_int(address)) is not None and found & _IID_MASK == value


@lru_cache(maxsize=4096)
def _address_int(text: str) -> int | None:
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None
