"""How the tunnel's loops use sealing: seal on the way out, open on the way in.

Replays need nothing of their own here: a sealed object opens only under the key it was sealed for,
and the receive path's ledger (agent.ledger) refuses a key it has handled, across restarts too.
"""

from __future__ import annotations

import ipaddress

from agent import wire
from agent.sealing.header import SealError
from agent.sealing.peers import PeerTable
from agent.sealing.sealer import Sealer


class SealedTunnel:
    """A node's sealer, with the failures the loops count (wire.WireError reasons)."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

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

    def reload(self) -> PeerTable:
        """Read the peers file again; PeersError (the old peers kept) says what is wrong with it."""
        return self.sealer.peers.reload()
