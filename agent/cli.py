"""hoshino-agent: run one node headless until SIGINT, SIGTERM or SIGHUP."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import signal
import sys
import threading
from types import FrameType

from agent import __version__
from agent.config import ConfigError, add_arguments, config_from_args
from agent.node import Node, NodeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoshino-agent",
        description="Carry this machine's IPv6 packets through an S3 bucket (an experiment in misusing S3).",
        epilog="Needs Linux, root (or CAP_NET_ADMIN) and /dev/net/tun. Stops cleanly on SIGINT, SIGTERM or SIGHUP.",
    )
    add_arguments(parser)
    parser.add_argument("--verbose", "-v", action="store_true", help="log every S3 notice")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


class HeldLines:
    """Log lines kept back while the node starts: shown if it starts, dropped if its error says why not."""

    def __init__(self, root: logging.Logger) -> None:
        self.root = root
        self.handlers = list(root.handlers)
        self.memory = logging.handlers.MemoryHandler(capacity=1000, flushLevel=logging.CRITICAL + 1,
                                                     flushOnClose=False)
        for handler in self.handlers:
            root.removeHandler(handler)
        root.addHandler(self.memory)

    def _restore(self) -> None:
        self.root.removeHandler(self.memory)
        for handler in self.handlers:
            self.root.addHandler(handler)

    def release(self) -> None:
        """Show what was held, then log as usual."""
        self._restore()
        for record in self.memory.buffer:
            self.root.handle(record)
        self.memory.close()

    def drop(self) -> None:
        """Forget what was held, then log as usual."""
        self._restore()
        self.memory.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s hoshino-agent %(levelname)s %(message)s",
    )
    held = HeldLines(logging.getLogger())
    try:
        node = Node(config_from_args(args))
    except (ConfigError, NodeError) as error:
        parser.exit(2, f"hoshino-agent: error: {error}\n")
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        node.start()
    except NodeError as error:
        held.drop()  # the error below says it all: the notices that led to it would only repeat it
        print(f"hoshino-agent: error: {error}", file=sys.stderr)
        return 1
    except BaseException:
        held.release()
        raise
    held.release()
    print(
        f"hoshino-agent: {node.address} on {node.config.interface}"
        f"{' in ' + node.config.netns if node.config.netns else ''}, bucket {node.config.bucket}",
        file=sys.stderr, flush=True,
    )
    while not (stop_requested.wait(0.5) or node.wait(0)):
        pass
    node.stop()
    if node.error:
        print(f"hoshino-agent: error: {node.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
