"""The node's heap setting: a large body freed after another is still a mapping of its own, not heap."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from agent.heap import return_large_blocks


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def mapped_bytes() -> int:
    """Bytes glibc holds in blocks mapped on their own."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    return int(libc.mallinfo2().hblkhd)


def test_a_body_of_megabytes_is_mapped_on_its_own_even_after_a_larger_one_was_freed():
    if not return_large_blocks():
        pytest.skip("no glibc here: its heap is not the one this setting is for")
    first = bytes(8 << 20)  # freed, this would lift glibc's own threshold to 8 MiB
    del first
    before = mapped_bytes()
    body = bytes(4 << 20)
    assert mapped_bytes() - before >= 4 << 20  # a mapping, returned to the kernel once freed
    del body
    assert mapped_bytes() <= before
