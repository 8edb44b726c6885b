"""hoshino-agent: run one node headless until SIGINT or SIGTERM (SIGHUP reloads peers), or make and show its key."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from agent import __version__
from agent.config import ConfigError, add_arguments, config_from_args
from agent.node import START_ERRORS, Node, NodeError
from agent.scrape import TIMEOUT
from agent.sealing.keys import KeyFileError, encode_public_key, generate_key_file, load_private_key
from agent.status import DEFAULT_METRICS, PACE
from agent.status import run as status_command
from agent.usage import Parser
from agent.wording import plural


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hoshino-agent",
        description="Carry this machine's IPv6 packets through an S3 bucket (an experiment in misusing S3).",
        epilog="Needs Linux, root (or CAP_NET_ADMIN) and /dev/net/tun. Stops cleanly on SIGINT or SIGTERM. "
               "SIGHUP reloads the peers file of a sealed node (a broken file keeps the old peers); "
               "an unsealed node has none, and stops. Exits 0 on a clean stop, 1 on an error while starting "
               "or running, 2 on flags or settings that cannot work.",
    )
    add_arguments(parser)
    parser.add_argument("--verbose", "-v", action="store_true", help="log every S3 notice")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands",
                                     description="without a command, hoshino-agent runs the node")
    genkey = commands.add_parser("genkey", help="write a new private key to PATH (mode 0600) and print its public key",
                                 description="Write a new X25519 private key to PATH, readable by its owner only "
                                             "(never over an existing file), and print its public key for the "
                                             "peers files of the other nodes.")
    genkey.add_argument("path", metavar="PATH")
    pubkey = commands.add_parser("pubkey", help="print the public key of the private key in PATH",
                                 description="Print the public key of the private key in PATH.")
    pubkey.add_argument("path", metavar="PATH")
    status = commands.add_parser("status", help="this node and a line per peer, from the running agent",
                                 description="Show this node (address, key id, state, what wakes it) and a line "
                                             "per peer: name, address, routes, last heard from, bytes each way, "
                                             "requests and dollars per day at the current pace, and whether "
                                             "its metrics page answers through the tunnel. Asks the running agent "
                                             "at its metrics page; needs no root.")
    status.add_argument("--metrics", metavar="PORT|HOST:PORT|URL", default=DEFAULT_METRICS,
                        help=f"where the agent's metrics page is (default {DEFAULT_METRICS}: "
                             f"http://[::1]:{DEFAULT_METRICS}/metrics)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--timeout", metavar="SECONDS", type=float, default=TIMEOUT,
                        help=f"how long each page may take to answer (default {TIMEOUT:g})")
    status.add_argument("--pace", metavar="SECONDS", type=float, default=PACE,
                        help=f"read the page again this long after the first reading for the current paces per "
                             f"day (default {PACE:g}; 0: one reading, paces since the agent started)")
    return parser


def key_command(command: str, path: str) -> int:
    """genkey or pubkey: print the public key, or a one-line error; return the exit status."""
    try:
        public = generate_key_file(path) if command == "genkey" else load_private_key(path).public_key()
    except KeyFileError as error:
        print(f"hoshino-agent {command}: error: {error}", file=sys.stderr)
        return 1
    print(encode_public_key(public))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "status":
        return status_command(args.metrics, args.json, args.timeout, args.pace)
    if args.command:
        return key_command(args.command, args.path)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s hoshino-agent %(levelname)s %(message)s",
    )
    try:
        node = Node(config_from_args(args))
    except (ConfigError, NodeError) as error:
        parser.error(str(error))
    stop_requested = threading.Event()
    reload_requested = threading.Event()
    sealed = bool(node.config.key_file)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    def request_reload(signum: int, _frame: FrameType | None) -> None:
        reload_requested.set()
        stop_requested.set()  # wakes the main loop, which reloads and goes on

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    # SIGHUP reloads the peers file of a sealed node, as daemons do; an unsealed one has nothing to
    # reload, so a hangup stops it, as it stops a program whose terminal went away.
    signal.signal(signal.SIGHUP, request_reload if sealed else request_stop)
    try:
        node.start()
    except (NodeError, *START_ERRORS) as error:  # start() words each itself; the rest is a backstop
        print(f"hoshino-agent: error: {error}", file=sys.stderr)
        return 1
    say(started(node))
    began = time.monotonic()
    while not node.wait(0):
        if stop_requested.wait(0.5):
            if not reload_requested.is_set():
                break
            reload_requested.clear()
            stop_requested.clear()
            say(node.reload_peers())
    node.stop()
    if node.error:
        say(f"error: {node.error}")
        return 1
    say(stopped(node, time.monotonic() - began))
    return 0


def say(line: str) -> None:
    print(f"hoshino-agent: {line}", file=sys.stderr, flush=True)


def started(node: Node) -> str:
    """One line at start: where the node is, whether it seals and for how many peers, what wakes it."""
    config = node.config
    where = f"{node.address} on {config.interface}{' in ' + config.netns if config.netns else ''}"
    peers = node.peers()
    sealing = f"sealed, {plural(peers, 'peer')}" if node.sealed is not None else "unsealed"
    return f"{where}, bucket {config.bucket}, {sealing}, wakes by {node.wakes_by}"


def stopped(node: Node, seconds: float) -> str:
    """One line at a clean stop: how long it ran, what it carried, and that it left nothing behind."""
    counts = node.stats.copy()
    return (f"stopped after {_duration(seconds)}: {plural(counts['packets_out'], 'packet')} out, "
            f"{counts['packets_in']:,} in; "
            f"{node.config.interface} removed, with its addresses and routes")


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m" if hours else f"{minute}m{second:02d}s" if minute else f"{seconds:.1f}s"


if __name__ == "__main__":
    sys.exit(main())
