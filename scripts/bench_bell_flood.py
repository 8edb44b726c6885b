"""A bell flood under ping, for this checkout's agents and (with --baseline REF) another commit's.

Run as root: `.venv/bin/python scripts/bench_bell_flood.py --baseline main`. For each variant, unsealed
and sealed, a fresh lab: the peer pings the local node 5 times a second, then 10 messages of 900
bells for keys never PUT are rung into the local node's queue while the ping goes on
(agent/lab/flood.py). Prints ping before and during, the GETs the local node made, and what it
counted; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import tempfile
from pathlib import Path

from bench_tunnel import checkout

from agent.lab import Lab
from agent.lab.flood import bell_flood
from agent.sealing import encode_public_key, generate_key_file


def sealing_flags(lab: Lab, directory: Path) -> dict[str, list[str]]:
    """A key pair per node and peers files naming each other; the flags that give them."""
    roles = ("local", "peer")
    public = {role: encode_public_key(generate_key_file(directory / f"{role}.key")) for role in roles}
    flags = {}
    for role in roles:
        other = "peer" if role == "local" else "local"
        (directory / f"{role}.toml").write_text(f'[peers]\n"{lab.address(other)}" = ["{public[other]}"]\n')
        flags[role] = ["--key-file", str(directory / f"{role}.key"), "--peers", str(directory / f"{role}.toml")]
    return flags


def run(name: str, code: Path | None, sealed: bool) -> None:
    with Lab(bucket=f"flood-{secrets.token_hex(4)}") as lab, tempfile.TemporaryDirectory() as directory:
        flags = sealing_flags(lab, Path(directory)) if sealed else {"local": [], "peer": []}
        local = lab.spawn_agent("local", *flags["local"], code=code)
        lab.spawn_agent("peer", *flags["peer"], code=code)
        figures = bell_flood(lab, lambda: lab.agent_log(local))
        print(f"== {name}, {'sealed' if sealed else 'unsealed'}\n{figures.report()}\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="REF", help="also run agents from this commit (a git worktree)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        variants: list[tuple[str, Path | None]] = []
        if args.baseline:
            code, commit = stack.enter_context(checkout(args.baseline))
            variants.append((f"baseline {args.baseline} ({commit})", code))
        variants.append(("this checkout", None))
        for name, agents in variants:
            for sealed in (False, True):
                run(name, agents, sealed)


if __name__ == "__main__":
    main()
