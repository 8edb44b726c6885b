"""The --demo mode: a local lab (S3 server, peer node, namespaces) set up in the node's worker thread."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from agent.config import Config
from agent.events import EventQueue

from .bucket import StoreLike
from .controls import NodeControl

if TYPE_CHECKING:
    from agent.lab import Lab


class Demo:
    """Builds the lab and this node on demand, so the dashboard is up while the lab starts."""

    def __init__(self, events: EventQueue) -> None:
        self.events = events
        self.lab: Lab | None = None
        self.config: Config | None = None

    def make_node(self) -> NodeControl:
        """Start the lab and the peer node; return this node, its device in the lab's namespace."""
        from agent.lab import Lab
        from agent.node import Node

        lab = Lab()
        lab.__enter__()
        self.lab = lab
        lab.start_peer()
        self.config = lab.local_config()
        return Node(self.config, self.events)

    def start_traffic(self) -> None:
        """Ping, a periodic TCP fetch and UDP from this node's namespace to the peer."""
        if self.lab is not None:
            self.lab.start_traffic()

    def make_store(self) -> StoreLike:
        """The lab's bucket, for the inspector."""
        from agent.transport import open_bucket

        if self.config is None:
            raise RuntimeError("the lab is not up yet")
        return open_bucket(self.config.bucket, self.config.endpoint_url, self.config.region)

    def close(self) -> None:
        """Remove everything the lab made; the node has stopped by now."""
        if self.lab is not None:
            with contextlib.suppress(Exception):
                self.lab.close()
            self.lab = None
