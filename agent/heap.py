"""The C heap's handling of large blocks, set once per process for the object bodies a node moves.

glibc serves a block above its mmap threshold (128 KiB at first) with a mapping of its own, returned
to the kernel when freed; but each such free raises the threshold to that block's size, up to
32 MiB, and from then on bodies of a few MiB come from the heap, whose freed memory stays resident.
A node fetching 4 MiB objects four at a time, through obstore's Rust buffers and then Python's
bytes, so held 117 MiB where it needs 85 (docs/performance.md). A fixed threshold keeps every new
body in a mapping of its own: freed, it is gone. (Free space already in the heap still serves large
blocks, so a node sets it as it starts.)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number (malloc.h); setting it also stops the threshold from moving."""
LARGE_BLOCK = 256 << 10
"""Blocks from this size up are mapped on their own: object bodies, not the interpreter's small objects."""


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc (musl, say), which needs none of this."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
    return False
