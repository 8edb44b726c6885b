"""How the tunnel's loops use sealing: seal on the way out, open on the way in.

Replays need nothing of their own here: a sealed object opens only under the key it was sealed for,
and the receive path's ledger (agent.ledger) refuses a key it has handled, across restarts too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from agent import wire
from agent.sealing.header import SealError
from agent.sealing.keys import key_id
from agent.sealing.peers import PeerTable
from agent.sealing.sealer import Sealer


class SealedTunnel:
    """A node's sealer, with the failures the loops count (wire.WireError reasons)."""

    def __init__(self, sealer: Sealer, report: Callable[[str], None] | None = None) -> None:
        """report: where the sealer's warnings go (a key near its bound), instead of the log."""
        self.sealer = sealer
        if report is not None:
            sealer.report = report

    def seal(self, object_key: str, body: bytes) -> bytes:
        """The sealed body to PUT under object_key; WireError('unknown_peer') for a destination with no key."""
        try:
            return self.sealer.seal(object_key, body)
        except SealError as error:
            raise wire.WireError(str(error), error.reason) from None

    def open(self, object_key: str, body: bytes) -> tuple[ipaddress.IPv6Address, bytes]:
        """The authenticated sender and the body it sealed; WireError names why an object is refused."""
        try:
            opened = self.sealer.open(object_key, body)
        except SealError as error:
            raise wire.WireError(str(error), error.reason) from None
        return opened.sender, opened.body

    @property
    def key_id(self) -> str:
        """This node's key id in hex, as peers see it in the headers of its objects."""
        return key_id(self.sealer.public_key).hex()

    def reload(self) -> PeerTable:
        """Read the peers file again; PeersError (the old peers kept) says what is wrong with it."""
        return self.sealer.peers.reload()

    def collector(self) -> Collector:
        """The objects sealed with each key, for the metrics listener."""
        return _SealedCollector(self.sealer)


class _SealedCollector(Collector):
    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def collect(self) -> Iterator[Any]:
        family = CounterMetricFamily(
            "hoshino_sealed_objects", "Objects sealed since start, by this node's key id and the recipient's "
            "key id: one key may seal 2^32 (docs/wire-format.md).", labels=["key", "recipient_key"])
        for (own, recipient), count in sorted(dict(self._sealer.sealed).items()):
            family.add_metric([own.hex(), recipient.hex()], count)
        yield family
