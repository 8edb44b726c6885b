"""A hostile writer: objects planted in a node's inbox (and its doorbell rung), as anyone with write access could."""

from __future__ import annotations

import contextlib
import ipaddress

from agent import wire
from agent.lab.server import S3Server
from agent.lab.traffic import Service
from agent.transport.base import Bell
from agent.transport.bell_format import encode_bells
from agent.transport.sqs import queue_name


def plant(server: S3Server, sqs_server: S3Server, bucket: str, key: str, body: bytes,
          victim: ipaddress.IPv6Address, key_prefix: str = "") -> None:
    """PUT body under key and ring the victim's doorbell if it has one, as a writer with both rights would."""
    server.client().put_object(Bucket=bucket, Key=key, Body=body)
    sqs = sqs_server.sqs_client()
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
        url = sqs.get_queue_url(QueueName=queue_name(key_prefix, victim))["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=encode_bells([Bell(key, len(body))]))


class HostileObjects(Service):
    """Puts a malformed object into a node's inbox every so often, as a hostile bucket might."""

    def __init__(self, server: S3Server, sqs_server: S3Server, bucket: str, victim: ipaddress.IPv6Address,
                 period: float = 30.0) -> None:
        super().__init__(None)  # S3 is on this namespace's loopback
        self.server = server
        self.sqs_server = sqs_server
        self.bucket = bucket
        self.keys = wire.KeyMaker()
        self.victim = victim
        self.period = period
        self.planted = 0

    def start(self) -> HostileObjects:
        super().start()
        return self

    def run(self) -> None:
        delay = 4.0
        while not self._stop.wait(delay):
            with contextlib.suppress(Exception):  # the server may be restarting: try again later
                plant(self.server, self.sqs_server, self.bucket, self.keys.make(self.victim),
                      b"\x00not a packet: a malformed object planted by the demo", self.victim)
                self.planted += 1
            delay = self.period


def ring_flood(sqs_server: S3Server, victim: ipaddress.IPv6Address, messages: int = 10, bells: int = 900,
               key_prefix: str = "", sender: ipaddress.IPv6Address | None = None) -> int:
    """Ring the victim's queue with bells for fresh keys that were never PUT, as any member allowed to
    ring could: `messages` SendMessage requests of `bells` bells each (900 make ~52 KB). The bells
    name a sender when one is given, with no MAC; how many were rung."""
    sqs = sqs_server.sqs_client()
    url = sqs.get_queue_url(QueueName=queue_name(key_prefix, victim))["QueueUrl"]
    keys = wire.KeyMaker(key_prefix)
    for _ in range(messages):
        body = encode_bells([Bell(keys.make(victim), 1200) for _ in range(bells)], sender)
        sqs.send_message(QueueUrl=url, MessageBody=body)
    return messages * bells
