"""Seal and open 1 MiB bodies (the largest bundle the egress loop makes) between two nodes.

Prints the throughput of each direction and of the round trip, on one core. A benchmark to read,
not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from agent import wire
from agent.sealing import Peers, Sealer, encode_public_key

A = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::a")
B = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::b")


def pair(directory: Path) -> tuple[Sealer, Sealer]:
    """Two nodes that list each other in their peers files."""
    keys = {A: X25519PrivateKey.generate(), B: X25519PrivateKey.generate()}
    sealers = []
    for own, peer in ((A, B), (B, A)):
        path = directory / f"peers-{own}.toml"
        path.write_text(f'[peers]\n"{peer}" = "{encode_public_key(keys[peer].public_key())}"\n')
        sealers.append(Sealer(keys[own], own, Peers(path)))
    return sealers[0], sealers[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 20, help="body size in bytes (default 1 MiB)")
    parser.add_argument("--count", type=int, default=200, help="bodies to seal and open (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = pair(Path(tmp))
    packet = bytes([0x60]) + bytes(args.size - 1)  # the cipher's cost does not depend on the contents
    keys = [wire.KeyMaker().make(B) for _ in range(args.count)]
    a.seal(keys[0], packet)  # derive the pair key outside the timing

    sealing = opening = 0.0
    for key in keys:  # one body at a time, as the loops do: memory is reused, not grown
        start = time.perf_counter()
        sealed = a.seal(key, packet)
        middle = time.perf_counter()
        opened = b.open(key, sealed)
        opening += time.perf_counter() - middle
        sealing += middle - start
        if opened.body != packet:
            raise SystemExit("a body did not round-trip")

    megabytes = args.size * args.count / 1e6
    print(f"{args.count} bodies of {args.size} bytes, one thread")
    print(f"seal:        {megabytes / sealing:8.0f} MB/s  ({sealing / args.count * 1e3:.2f} ms per body)")
    print(f"open:        {megabytes / opening:8.0f} MB/s  ({opening / args.count * 1e3:.2f} ms per body)")
    print(f"seal + open: {megabytes / (sealing + opening):8.0f} MB/s")


if __name__ == "__main__":
    main()
