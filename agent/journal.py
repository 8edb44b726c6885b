"""The delivered keys a node must not deliver again, kept in a small file across restarts.

One line per delivered object, appended before its packets are written: `until sender key`, where
until is the wall-clock time after which the key could no longer be accepted anyway, and sender is
the authenticated sender or `-`. The file holds at most the window's worth of keys: once it has
grown to twice what is still live (and past COMPACT_AFTER lines), it is rewritten with the live
lines alone and renamed into place, so a crash leaves the old file or the new one, never a half.

Each append is one write(2) to a file opened O_APPEND, without fsync: a process that is killed
(SIGKILL, a crash) loses nothing the kernel was given. Only a crash of the whole machine can lose
the last lines, and a machine takes longer to come back than the window (seconds) lasts, by which
time those keys are refused as stale anyway.

A lock file beside it is held (flock) for the node's life: a second agent of the same node on the same state
directory is refused at start, since two receivers of one inbox could each deliver an object.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMPACT_AFTER = 4096
"""Lines appended before the journal is worth rewriting."""
MAX_LINE = 512


class JournalError(RuntimeError):
    """The journal cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Remembered:
    """A delivered key, its sender, and the wall-clock time until which it must be refused."""

    key: str
    sender: ipaddress.IPv6Address | None
    until: float


def journal_name(bucket: str, key_prefix: str, address: ipaddress.IPv6Address) -> str:
    """One file per inbox: the bucket, the key prefix and the address, in a name any filesystem takes."""
    inbox = f"{bucket}-{key_prefix}{address.exploded}"
    return "delivered-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in inbox) + ".log"


class Journal:
    """An append-only file of delivered keys, compacted as it grows; locked while open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path.with_name(self.path.name + ".lock"),
                                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise JournalError(f"cannot keep the delivered keys in {self.path}: {error.strerror}: "
                               "run as root, or pass --state-dir with a directory this user may write") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise JournalError(f"{self.path} is in use: another agent of this node is running "
                               "(two receivers of one inbox could each deliver an object)") from None
        self._fd = -1
        self._lines = 0
        self._next_check = COMPACT_AFTER

    def load(self, now: float) -> list[Remembered]:
        """The keys still to be refused; lines that are malformed or past their time are skipped."""
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            data = b""
        remembered = [item for line in data.splitlines() if (item := _parse(line)) is not None and item.until > now]
        self._rewrite(remembered)
        return remembered

    def append(self, item: Remembered, live: Callable[[], list[Remembered]]) -> None:
        """Add one delivered key; rewrite the file from live() once it holds twice what is live."""
        if self._fd < 0:
            self._rewrite([])
        os.write(self._fd, _line(item))
        self._lines += 1
        if self._lines >= self._next_check:
            items = live()
            if self._lines >= 2 * len(items):
                self._rewrite(items)
            else:
                self._next_check = max(COMPACT_AFTER, 2 * len(items))

    def _rewrite(self, items: list[Remembered]) -> None:
        """Replace the file with these lines alone (written aside, then renamed into place)."""
        temporary = self.path.with_name(self.path.name + ".new")
        with open(temporary, "wb") as file:
            file.write(b"".join(_line(item) for item in items))
        os.replace(temporary, self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._lines = len(items)
        self._next_check = max(COMPACT_AFTER, 2 * len(items))

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fd = self._lock_fd = -1


def _line(item: Remembered) -> bytes:
    sender = item.sender.compressed if item.sender is not None else "-"
    return f"{item.until:.3f} {sender} {item.key}\n".encode()


def _parse(line: bytes) -> Remembered | None:
    if len(line) > MAX_LINE:
        return None
    try:
        until, sender, key = line.decode("ascii").split(" ", 2)
        return Remembered(key, None if sender == "-" else ipaddress.IPv6Address(sender), float(until))
    except ValueError:
        return None
