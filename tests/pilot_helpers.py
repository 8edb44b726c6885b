"""Waiting on a running Textual app in tests, without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until condition() holds; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)
    await pilot.pause()
