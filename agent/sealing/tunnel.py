"""How the tunnel's loops use sealing: seal on the way out; open, and refuse replays, on the way in."""

from __future__ import annotations

import ipaddress

from agent import wire
from agent.sealing.header import SealError
from agent.sealing.peers import PeerTable
from agent.sealing.replay import ReplayGuard
from agent.sealing.sealer import Sealer


class SealedTunnel:
    """A node's sealer and replay memory, with the failures the loops count (wire.WireError reasons)."""

    def __init__(self, sealer: Sealer, window: float) -> None:
        self.sealer = sealer
        self.replays = ReplayGuard(window)

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

    def replayed(self, sender: ipaddress.IPv6Address, object_key: str) -> bool:
        """True if this sender's object was delivered before, under this key or any other."""
        return self.replays.seen(sender, wire.parse_key(object_key, self.sealer.key_prefix).ulid)

    def reload(self) -> PeerTable:
        """Read the peers file again; PeersError (the old peers kept) says what is wrong with it."""
        return self.sealer.peers.reload()
