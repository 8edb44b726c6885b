"""hoshino-tui: the agent's flags plus --demo, --inspect, --replay and --record, turned into a running dashboard."""

from __future__ import annotations

import argparse
import importlib.util
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent import __version__
from agent.config import Config, ConfigError, add_arguments, config_from_args
from agent.events import EventQueue
from agent.recording import Recorder, RecordingError, RecordingQueue
from agent.usage import Parser

from .app import HoshinoApp
from .bucket import StoreLike
from .controls import NodeControl

if TYPE_CHECKING:
    from agent.lab.replay import RecordingNode

USAGE_HINT = """\
hoshino-tui needs a bucket, the demo or a recording:
  sudo hoshino-tui --demo                       local S3 server, a peer node and traffic, all on this machine
  sudo hoshino-tui --bucket NAME [--endpoint-url URL]   this machine's node on a real bucket
  hoshino-tui --inspect --bucket NAME           only the inspector: no root, no TUN
  hoshino-tui --replay FILE [--speed X]         play back what --record FILE wrote: no root, no bucket
hoshino-tui --help lists every flag."""
LAB_MODULES = ("moto", "flask_cors")
"""What the demo's local S3 server needs: the lab extra, moto[server]."""
LAB_HINT = """\
hoshino-tui: error: the demo runs moto's S3 server, which is not installed: install the lab extra,
  in a clone:      .venv/bin/pip install -e '.[lab]'     (make demo does this)
  or with pipx:    pipx install '.[lab]'   (or pipx inject hoshino 'moto[server]')
  or in a venv:    ~/.venvs/hoshino/bin/pip install '.[lab]'"""
HANGUP_CHECK = 0.5
"""Seconds between checks that the terminal is still there."""


def speed(text: str) -> float:
    """A playback speed: 1 as recorded, 10 ten times faster, 0 as fast as possible."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a speed: {text!r} (1 as recorded, 10 faster, 0 at once)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the speed cannot be negative (0 plays as fast as possible)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The agent's flags and the dashboard's own."""
    parser = Parser(prog="hoshino-tui", description="A live view of a Hoshino node.",
                    epilog="Exits 0 when quit, 1 when the node failed (said again after the screen closes), "
                           "2 on flags or settings that cannot work.")
    add_arguments(parser, {"--bucket": "S3 bucket that carries the packets (required, except with --demo "
                                       "or --replay)"})
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    group = parser.add_argument_group("dashboard")
    mode = group.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true",
                      help="run a local lab: S3 server, a peer node and traffic (needs root and the lab extra)")
    mode.add_argument("--inspect", action="store_true",
                      help="only the inspector of the bucket's objects (no root, no TUN)")
    mode.add_argument("--replay", type=Path, metavar="FILE",
                      help="play back a recording made with --record (no root, no bucket)")
    group.add_argument("--s3", choices=("moto", "seaweedfs"), default=os.environ.get("HOSHINO_TEST_S3") or "moto",
                       help="with --demo: the local S3 engine, moto's server or SeaweedFS (default moto) "
                            "[$HOSHINO_TEST_S3]")
    group.add_argument("--speed", type=speed, metavar="X",
                       help="with --replay: 1 as recorded (default), 10 ten times faster, 0 as fast as possible")
    group.add_argument("--record", type=Path, metavar="FILE",
                       help="write every event of the node to FILE as JSON lines (gzip if it ends .gz)")
    group.add_argument("--pcap-dir", type=Path, default=Path("."), metavar="DIR",
                       help="where the inspector writes pcap files (default: the current directory)")
    return parser


def _make_node(config: Config, events: EventQueue) -> NodeControl:
    from agent.node import Node

    return Node(config, events)


def _make_store(config: Config) -> StoreLike:
    from agent.transport import open_bucket

    bucket = open_bucket(config.bucket, config.endpoint_url, config.region, s3_client=config.s3_client)
    bucket.check_access(config.key_prefix)
    return bucket


def terminal_gone(fds: Sequence[int]) -> bool:
    """True once the terminal behind any of these descriptors has hung up (its emulator or session closed)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, 0)  # no events asked for: hang-ups and errors are always reported
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in poller.poll(0))


def quit_when_terminal_goes(app: HoshinoApp, clean_up: Callable[[], None] = lambda: None,
                            check: float = HANGUP_CHECK) -> None:
    """When the terminal goes away, stop the node and clean up, then leave without drawing again.

    SIGHUP says so when this process leads the session or its shell passes the hang-up on; a parent
    such as make may keep it, and then only the terminal itself tells, by hanging up: it is
    watched too. With no terminal to restore, Textual's own shutdown would wait on its output."""
    once = threading.Lock()

    def finish(status: int) -> None:
        if not once.acquire(blocking=False):
            return
        try:
            app.stop_node()
            clean_up()
        finally:
            os._exit(status)

    def watch(fds: list[int]) -> None:
        while not terminal_gone(fds):
            threading.Event().wait(check)
        finish(128 + signal.SIGHUP)

    signal.signal(signal.SIGHUP, lambda signum, _frame: threading.Thread(target=finish, args=(128 + signum,)).start())
    fds = [fd for fd in (0, 1, 2) if os.isatty(fd)]
    if fds:
        threading.Thread(target=watch, args=(fds,), name="hoshino-terminal", daemon=True).start()


def _events(args: argparse.Namespace) -> tuple[EventQueue, Recorder | None]:
    if args.record is None:
        return EventQueue(), None
    recorder = Recorder(args.record)
    return RecordingQueue(recorder), recorder


def _run(app: HoshinoApp, *closers: Callable[[], None], live: bool = True) -> int:
    """Run the app until quit; its exit status (a replay only shows a failure: it exits 0)."""
    def clean_up() -> None:
        for close in closers:
            close()

    quit_when_terminal_goes(app, clean_up)
    try:
        app.run()
    finally:
        clean_up()
    return exit_status(app) if live else 0


def exit_status(app: HoshinoApp) -> int:
    """0 after a node that ran until quit; 1 after one that failed, saying why again, now that the
    screen that said it has closed."""
    if not app.failure:
        return 0
    print(f"hoshino-tui: error: {app.failure}", file=sys.stderr)
    return 1


def replay_app(path: Path, speed: float = 1.0, *, pcap_dir: Path = Path("."), config: Config | None = None,
               store_factory: Callable[[], StoreLike] | None = None) -> tuple[HoshinoApp, RecordingNode]:
    """The dashboard over a recording played back, on the recording's clock: --replay, and the
    screenshots and snapshot tests, which play the demo's recording at speed 0. Without store_factory
    the inspector shows only what the recorded node carried."""
    from agent.lab.replay import RecordingNode

    node = RecordingNode(path, EventQueue(), speed)
    played = f"{path.name} at {'full speed' if speed == 0 else f'x{speed:g}'}"
    app = HoshinoApp(node.events, lambda: node, config=config, store_factory=store_factory, clock=node.clock,
                     pcap_dir=pcap_dir, replay=played)
    return app, node


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dashboard; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.record is not None and (args.inspect or args.replay):
        parser.error("--record records a running node: use it with --demo or --bucket")
    if args.speed is not None and args.replay is None:
        parser.error("--speed is the pace of a replay: use it with --replay FILE")
    if args.replay is not None:
        try:
            app, _ = replay_app(args.replay, 1.0 if args.speed is None else args.speed, pcap_dir=args.pcap_dir)
        except RecordingError as error:
            parser.error(str(error))
        return _run(app, live=False)
    if args.demo:
        if missing := [name for name in LAB_MODULES if importlib.util.find_spec(name) is None]:
            print(f"{LAB_HINT}\n(missing: {', '.join(missing)})", file=sys.stderr)
            return 2
        from agent.lab.demo import Demo

        try:
            events, recorder = _events(args)
        except RecordingError as error:
            parser.error(str(error))
        demo = Demo(events, s3=args.s3, s3_client=args.s3_client)
        app = HoshinoApp(events, demo.make_node, store_factory=demo.make_store, after_start=demo.start_traffic,
                         pcap_dir=args.pcap_dir, tear_down=demo.close)
        return _run(app, demo.close, *([recorder.close] if recorder else []))
    if not args.bucket:
        print(USAGE_HINT, file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except ConfigError as error:
        parser.error(str(error))
    store_factory = lambda: _make_store(config)  # noqa: E731
    if args.inspect:
        return _run(HoshinoApp(config=config, store_factory=store_factory, inspect_only=True,
                               pcap_dir=args.pcap_dir))
    try:
        events, recorder = _events(args)
    except RecordingError as error:
        parser.error(str(error))
    app = HoshinoApp(events, lambda: _make_node(config, events), config=config, store_factory=store_factory,
                     pcap_dir=args.pcap_dir)
    return _run(app, *([recorder.close] if recorder else []))


if __name__ == "__main__":
    sys.exit(main())
