"""A hostile writer: malformed objects planted in a node's inbox, as anyone with write access could."""

from __future__ import annotations

import contextlib
import ipaddress

from agent import wire
from agent.lab.server import S3Server
from agent.lab.traffic import Service


class HostileObjects(Service):
    """Puts a malformed object into a node's inbox every so often, as a hostile bucket might."""

    def __init__(self, server: S3Server, bucket: str, victim: ipaddress.IPv6Address, period: float = 30.0) -> None:
        super().__init__(None)  # S3 is on this namespace's loopback
        self.server = server
        self.bucket = bucket
        self.keys = wire.KeyMaker()
        self.victim = victim
        self.period = period
        self.planted = 0

    def start(self) -> HostileObjects:
        super().start()
        return self

    def run(self) -> None:
        client = self.server.client()
        delay = 4.0
        while not self._stop.wait(delay):
            with contextlib.suppress(Exception):  # the server may be restarting: try again later
                client.put_object(Bucket=self.bucket, Key=self.keys.make(self.victim),
                                  Body=b"\x00not a packet: a malformed object planted by the demo")
                self.planted += 1
            delay = self.period
