"""The lab's agent processes: another checkout's code, extra environment, and an agent that refuses a flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.lab import Lab, LabError

pytestmark = pytest.mark.root

FAKE_MAIN = """\
import os, sys, time
print(f"hoshino-agent: from {os.path.dirname(os.path.abspath(__file__))} mark={os.environ.get('BENCH_MARK')}",
      file=sys.stderr, flush=True)
time.sleep(60)
"""


def test_an_agent_runs_from_another_checkout_with_extra_environment(lab: Lab, tmp_path: Path) -> None:
    package = tmp_path / "agent"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_MAIN)
    process = lab.spawn_agent("local", code=tmp_path, env={"BENCH_MARK": "42"})
    assert f"hoshino-agent: from {package} mark=42" in lab.agent_log(process)


def test_an_agent_that_refuses_a_flag_is_not_taken_for_started(lab: Lab) -> None:
    # Its "hoshino-agent: error: ..." line must not pass for the line a started agent prints.
    with pytest.raises(LabError, match="unrecognized arguments: --no-such-flag"):
        lab.spawn_agent("local", "--no-such-flag")
