"""Key files and peers files in the table form, for the lab's nodes that route (tests and benchmarks)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from agent.sealing import encode_public_key, generate_key_file


class RoutingKeys:
    """A key for each named node, and the peers file each one is given."""

    def __init__(self, directory: Path, addresses: dict[str, ipaddress.IPv6Address]) -> None:
        self.directory = directory
        self.addresses = addresses
        self.public = {name: encode_public_key(generate_key_file(directory / f"{name}.key")) for name in addresses}

    def write_peers(self, name: str, peers: dict[str, list[str]], names: dict[str, str] | None = None) -> None:
        """name's peers file: each peer by name (or the one `names` gives it), with the routes it carries."""
        names = names or {}
        tables = [f'[peers."{self.addresses[peer]}"]\nkeys = ["{self.public[peer]}"]\n'
                  f'routes = [{", ".join(f"{chr(34)}{route}{chr(34)}" for route in routes)}]\n'
                  f'name = "{names.get(peer, peer)}"\n'
                  for peer, routes in peers.items()]
        (self.directory / f"{name}.toml").write_text("[peers]\n" + "\n".join(tables))

    def flags(self, name: str) -> list[str]:
        return ["--key-file", str(self.directory / f"{name}.key"), "--peers", str(self.directory / f"{name}.toml")]
