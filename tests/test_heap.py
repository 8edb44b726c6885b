"""The node's heap setting: a large body freed after another is still a mapping of its own, not heap."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent('''
    import ctypes, ctypes.util, sys
    from agent.heap import return_large_blocks

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                         "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "fixed" and not return_large_blocks():
        print("no glibc")
        sys.exit()
    first = bytes(8 << 20)  # freed, this lifts glibc's own threshold to 8 MiB
    del first
    before = libc.mallinfo2().hblkhd
    body = bytes(4 << 20)
    print(libc.mallinfo2().hblkhd - before >= 4 << 20)
''')


def body_is_mapped(setting: str) -> str:
    """In a fresh interpreter (a heap with free space already in it serves large blocks whatever the
    threshold: the node sets it as it starts), whether a 4 MiB body got a mapping of its own."""
    return subprocess.run([sys.executable, "-c", CHECK, setting], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_body_of_megabytes_is_mapped_on_its_own_even_after_a_larger_one_was_freed():
    fixed = body_is_mapped("fixed")
    if fixed == "no glibc":
        pytest.skip("no glibc here: its heap is not the one this setting is for")
    assert fixed == "True"
    assert body_is_mapped("glibc's own") == "False"  # what the setting is for
