"""The demo: a local lab (S3 server, peer node, namespaces, traffic) and this machine's node on it."""

from __future__ import annotations

import contextlib

from agent.config import Config
from agent.events import EventQueue
from agent.lab.nodes import Lab
from agent.node import Node
from agent.transport import GuardedBucket, open_bucket

NODE_STOP = 15.0
"""How long closing waits for this node to stop before it removes the lab anyway."""


class Demo:
    """Builds the lab and this node on demand, so a front end can be up while the lab starts."""

    def __init__(self, events: EventQueue, s3: str | None = None, s3_client: str | None = None) -> None:
        """s3: the lab's S3 engine (moto or seaweedfs); s3_client: what this node sends S3 requests with."""
        self.events = events
        self.s3 = s3
        self.s3_client = s3_client
        self.lab: Lab | None = None
        self.config: Config | None = None
        self.node: Node | None = None

    def make_node(self) -> Node:
        """Start the lab and the peer node; return this node, its device in the lab's namespace."""
        lab = Lab(s3=self.s3)
        self.lab = lab
        lab.__enter__()
        lab.start_peer()
        self.config = lab.local_config(**({"s3_client": self.s3_client} if self.s3_client else {}))
        self.node = Node(self.config, self.events)
        return self.node

    def start_traffic(self) -> None:
        """Ping, a periodic TCP fetch and UDP from this node's namespace to the peer."""
        if self.lab is not None:
            self.lab.start_traffic()

    def make_store(self) -> GuardedBucket:
        """The lab's bucket, for an inspector."""
        if self.config is None:
            raise RuntimeError("the lab is not up yet")
        return open_bucket(self.config.bucket, self.config.endpoint_url, self.config.region,
                           s3_client=self.config.s3_client)

    def close(self, timeout: float = NODE_STOP) -> None:
        """Remove everything the lab made. Called as this node is told to stop, it stops the traffic and
        the peer at once, alongside it, and waits for it to stop (its last deletes go to the lab's S3
        server, its route to the lab's namespace) before removing the namespaces and servers."""
        lab = self.lab
        if lab is None:
            return
        with contextlib.suppress(Exception):
            lab.stop_agents()
        if self.node is not None:
            self.node.wait(timeout)
        self.lab = None
        with contextlib.suppress(Exception):
            lab.close()
