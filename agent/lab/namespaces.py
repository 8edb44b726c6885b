"""Network namespaces the lab creates, named for their role and creator, and commands run inside them."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

from agent import netconf

NAMESPACE_NAME = re.compile(r"^hoshino-[a-z]+-(\d+)-[0-9a-f]{4}$")


class Namespace:
    """A network namespace named for its role and the creating process, removed on close."""

    def __init__(self, role: str) -> None:
        self.name = f"hoshino-{role}-{os.getpid()}-{secrets.token_hex(2)}"
        netconf.create_namespace(self.name)

    def close(self) -> None:
        netconf.remove_namespace(self.name)


def remove_orphaned_namespaces() -> list[str]:
    """Remove lab namespaces whose creating process is gone (it was killed before it could)."""
    removed = []
    for path in sorted(netconf.NETNS_DIR.glob("hoshino-*")):
        match = NAMESPACE_NAME.match(path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            netconf.remove_namespace(path.name)
            removed.append(path.name)
    return removed


def run_in(namespace: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace (ip netns exec) and capture its output."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command], capture_output=True, text=True, timeout=timeout, check=False
    )
