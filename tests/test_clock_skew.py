"""A node whose clock is off (libfaketime) still talks both ways, and says how far off it is."""

from __future__ import annotations

import re
import time

import pytest

from agent.lab import Lab, wait_until
from agent.lab.skew import node_view, ping, skewed_clock

pytestmark = pytest.mark.root


@pytest.mark.parametrize("offset", [5.0, -15.0, 90.0])
def test_a_node_whose_clock_is_off_talks_both_ways_and_says_so(lab: Lab, offset: float) -> None:
    lab.spawn_agent("local")
    skewed = lab.spawn_agent("peer", env=skewed_clock(offset))
    # The first seconds: the first answer may take a doorbell's set-up; from then on nothing is lost.
    started = time.monotonic()
    assert wait_until(lambda: ping(lab, "peer", 1) == 1, 30)
    print(f"first answer after {time.monotonic() - started:.1f} s")  # the first seconds, for the log
    # Late is not lost: on a loaded machine a reply may take seconds, so each is waited for long.
    assert ping(lab, "peer", 10, wait=15) == 10, (node_view(lab, "local"), node_view(lab, "peer"))
    assert ping(lab, "local", 10, wait=15) == 10, (node_view(lab, "local"), node_view(lab, "peer"))

    told = re.search(r"this node's clock is ([0-9.]+) s (ahead of|behind) the bucket's \(±([0-9.]+) s\): start your",
                     lab.agent_log(skewed))
    assert told, lab.agent_log(skewed)[-2000:]
    assert abs(float(told.group(1)) - abs(offset)) <= float(told.group(3)) + 0.1, told.group(0)
    assert (told.group(2) == "ahead of") == (offset > 0)
    view = node_view(lab, "peer")
    assert view.offset is not None and abs(view.offset - offset) < 1.1
    good = node_view(lab, "local")
    assert good.offset is not None and abs(good.offset) < 1.1
    assert good.stale == good.future == view.stale == view.future == 0
