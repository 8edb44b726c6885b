"""hoshino-tui: the agent's flags plus --demo and --inspect, turned into a running dashboard."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.config import Config, ConfigError, add_arguments, config_from_args
from agent.events import EventQueue

from .app import HoshinoApp
from .bucket import StoreLike
from .controls import NodeControl
from .demo import Demo

USAGE_HINT = """\
hoshino-tui needs a bucket or the demo:
  sudo hoshino-tui --demo                       local S3 server, a peer node and traffic, all on this machine
  sudo hoshino-tui --bucket NAME [--endpoint-url URL]   this machine's node on a real bucket
  hoshino-tui --inspect --bucket NAME           only the inspector: no root, no TUN
hoshino-tui --help lists every flag."""


def build_parser() -> argparse.ArgumentParser:
    """The agent's flags and the dashboard's own."""
    parser = argparse.ArgumentParser(prog="hoshino-tui", description="A live view of a Hoshino node.")
    add_arguments(parser)
    group = parser.add_argument_group("dashboard")
    mode = group.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true",
                      help="run a local lab: S3 server, a peer node and traffic (needs root)")
    mode.add_argument("--inspect", action="store_true",
                      help="only the inspector of the bucket's objects (no root, no TUN)")
    group.add_argument("--pcap-dir", type=Path, default=Path("."),
                       help="where the inspector writes pcap files (default: current directory)")
    return parser


def _make_node(config: Config, events: EventQueue) -> NodeControl:
    from agent.node import Node

    return Node(config, events)


def _make_store(config: Config) -> StoreLike:
    from agent.transport import open_bucket

    bucket = open_bucket(config.bucket, config.endpoint_url, config.region)
    bucket.check_access(config.key_prefix)
    return bucket


def clean_up_on_hang_up(app: HoshinoApp, clean_up: Callable[[], None] = lambda: None) -> None:
    """When the terminal goes away, stop the node and clean up, then leave without drawing again:
    with no terminal to restore, Textual's own shutdown would wait forever on its output."""

    def finish(signum: int) -> None:
        app.stop_node()
        clean_up()
        os._exit(128 + signum)

    signal.signal(signal.SIGHUP, lambda signum, _frame: threading.Thread(target=finish, args=(signum,)).start())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dashboard; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo:
        events = EventQueue()
        demo = Demo(events)
        app = HoshinoApp(events, demo.make_node, store_factory=demo.make_store, after_start=demo.start_traffic,
                         pcap_dir=args.pcap_dir)
        clean_up_on_hang_up(app, demo.close)
        try:
            app.run()
        finally:
            demo.close()
        return 0
    if not args.bucket:
        print(USAGE_HINT, file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except ConfigError as error:
        parser.error(str(error))
    store_factory = lambda: _make_store(config)  # noqa: E731
    if args.inspect:
        HoshinoApp(config=config, store_factory=store_factory, inspect_only=True, pcap_dir=args.pcap_dir).run()
        return 0
    events = EventQueue()
    app = HoshinoApp(events, lambda: _make_node(config, events), config=config, store_factory=store_factory,
                     pcap_dir=args.pcap_dir)
    clean_up_on_hang_up(app)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
