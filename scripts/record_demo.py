"""Record the demo: run hoshino-tui --demo --record under a pseudo-terminal for a while, then quit with q.

Usage (as root): python scripts/record_demo.py [SECONDS] [FILE]; the default writes
tests/data/demo.jsonl.gz, the recording the screenshots and the snapshot tests replay.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from agent.events import Event, NodeStarted, NodeStopped, PacketSeen, StatsSampled
from agent.recording import Playback, Recorder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "tests" / "data" / "demo.jsonl.gz"


def drain(fd: int, seconds: float) -> None:
    """Read what the app draws for a while, so its output never blocks."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                os.read(fd, 65536)
            except OSError:
                return


def trim(path: Path) -> list[Event]:
    """Cut the node's stop off the end, so a replay ends on a running node as the screenshots show it."""
    def running(event: Event) -> bool:
        return not isinstance(event, NodeStopped) and getattr(event, "state", "") != "stopped"

    events = [event for event in Playback(path) if running(event)]
    trimmed = path.with_name("trimmed-" + path.name)
    recorder = Recorder(trimmed)
    for event in events:
        recorder.write(event)
    recorder.close()
    trimmed.replace(path)
    return events


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 95.0
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT
    path.parent.mkdir(parents=True, exist_ok=True)
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "44"}
    app = subprocess.Popen([sys.executable, "-m", "hoshino_tui.cli", "--demo", "--record", str(path)],
                           stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    try:
        drain(master, seconds)
        os.write(master, b"q")
        deadline = time.monotonic() + 60
        while app.poll() is None and time.monotonic() < deadline:
            drain(master, 0.5)
    finally:
        if app.poll() is None:
            app.terminate()
            app.wait(30)
        os.close(master)
    events = trim(path)
    started = [event for event in events if isinstance(event, NodeStarted)]
    packets = [event for event in events if isinstance(event, PacketSeen)]
    stats = [event for event in events if isinstance(event, StatsSampled)]
    span = events[-1].time - events[0].time if events else 0.0
    print(f"{path}: {path.stat().st_size} bytes, {len(events)} events over {span:.1f} s: "
          f"{len(started)} started, {len(packets)} packets, {len(stats)} snapshots", file=sys.stderr)
    return 0 if started and packets else 1


if __name__ == "__main__":
    sys.exit(main())
