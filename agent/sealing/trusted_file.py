"""Read the small files that decide whom a node trusts (its key, its peers), refusing what ssh refuses."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path


class UntrustedFile(ValueError):
    """A file that must not be trusted as it is, with a message naming the fix."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_trusted(path: str | Path, limit: int, what: str, *, secret: bool) -> bytes:
    """At most limit bytes of a regular file owned by root or by this process's user, that no one else may
    change (secret: nor read); what names it in messages ("a private key"). OSError when it cannot be
    opened; UntrustedFile says what to fix.

    The file is opened without blocking and checked before it is read: a FIFO would otherwise hang the
    node until something wrote to it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise UntrustedFile(f"{path} is {kind}, not a regular file: point at the file itself")
        user = os.geteuid()
        if info.st_uid not in (0, user):
            raise UntrustedFile(f"{path} is owned by {_user_name(info.st_uid)}, neither root nor "
                                f"{_user_name(user)} who runs the node: whoever owns {what} decides whom the node "
                                f"trusts; run: chown {_user_name(user)} {path}")
        forbidden = 0o077 if secret else 0o022
        if info.st_mode & forbidden:
            mode = stat.S_IMODE(info.st_mode)
            who = "readable by its owner only" if secret else "writable by its owner only"
            raise UntrustedFile(f"{path} has mode {mode:04o}: {what} must be {who}; run: chmod 600 {path}")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UntrustedFile(f"{path} is larger than {limit} bytes: not a file this node wrote or reads")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
