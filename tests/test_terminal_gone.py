"""A terminal that goes away ends hoshino-tui within seconds, node and lab included, however the hang-up reaches it."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent import netconf
from agent.lab import wait_until

DEMO = Path(__file__).parent / "data" / "demo.jsonl.gz"
TUI = [sys.executable, "-m", "hoshino_tui.cli"]
# A parent that keeps the hang-up to itself and waits for its child, as make does.
KEEPS_HANGUP = [sys.executable, "-c",
                "import signal, subprocess, sys; signal.signal(signal.SIGHUP, lambda *_: None); "
                "sys.exit(subprocess.call(sys.argv[1:]))"]


def take_terminal() -> None:
    """In the child: lead a new session whose controlling terminal is the pty on stdin."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A pseudo-terminal running one command; close() is the terminal emulator going away."""

    def __init__(self, command: list[str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x2c\x00\x8c\x00\x00\x00\x00\x00")  # 44 rows, 140 columns
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=take_terminal,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        os.close(slave)
        self.output = 0
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # The app blocks when nobody reads what it draws: read like a terminal would, until it is closed.
        while not self.closed.is_set():
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += len(data)

    def close(self) -> None:
        self.closed.set()
        os.close(self.master)

    def children(self) -> list[int]:
        """The processes the command started."""
        return children(self.process.pid)


def children(pid: int) -> list[int]:
    """The processes pid started, from any of its threads."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


@contextmanager
def terminal(command: list[str]) -> Iterator[Terminal]:
    term = Terminal(command)
    try:
        yield term
    finally:
        if not term.closed.is_set():
            term.close()
        if term.process.poll() is None:
            os.killpg(term.process.pid, signal.SIGKILL)  # the session this test made, and only it
            term.process.wait(10)


def gone(pid: int) -> bool:
    """True once pid has exited (or is a zombie no one has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.parametrize("parent", [[], KEEPS_HANGUP], ids=["sighup", "parent-keeps-sighup"])
def test_replay_quits_when_its_terminal_closes(parent: list[str]) -> None:
    with terminal([*parent, *TUI, "--replay", str(DEMO), "--speed", "5"]) as term:
        assert wait_until(lambda: term.output > 4000, 30), "the app drew nothing"
        time.sleep(1.0)
        assert term.process.poll() is None
        app = term.children()[0] if parent else term.process.pid
        term.close()
        assert wait_until(lambda: gone(app), 10), "hoshino-tui outlived its terminal"
        assert term.process.wait(10) is not None


def lab_namespaces(pid: int) -> list[str]:
    return sorted(path.name for path in netconf.NETNS_DIR.glob(f"hoshino-*-{pid}-*"))


@pytest.mark.root
def test_the_demo_removes_its_lab_when_its_terminal_closes() -> None:
    with terminal([*KEEPS_HANGUP, *TUI, "--demo"]) as term:
        assert wait_until(lambda: bool(term.children()), 10)
        app = term.children()[0]
        # Up once both namespaces exist and the node's device is in its own.
        assert wait_until(lambda: len(lab_namespaces(app)) == 2, 60), "the lab did not come up"
        local = next(name for name in lab_namespaces(app) if name.startswith("hoshino-local-"))
        assert wait_until(lambda: netconf.device_exists("hoshino0", local), 60), "the node did not start"
        helpers = children(app)
        assert len(helpers) >= 2  # moto's server and the peer agent
        term.close()
        assert wait_until(lambda: gone(app), 30), "hoshino-tui --demo outlived its terminal"
        assert lab_namespaces(app) == []
        assert all(gone(pid) for pid in helpers)
