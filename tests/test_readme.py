"""README.md and the service unit stay true to the command line: README's flags table is the agent's flags,
every hoshino-agent and hoshino-tui command it shows parses, and the unit does not retry a usage error. And the
package's metadata builds without a deprecation."""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from agent.cli import build_parser as agent_parser
from agent.config import FLAGS
from agent.usage import USAGE_ERROR
from hoshino_tui.cli import build_parser as tui_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TABLE_ROW = re.compile(r"^\| `(--[a-z0-9-]+)` \| `([A-Z0-9_]+)` \|", re.MULTILINE)
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
PARSERS = {"hoshino-agent": agent_parser, "hoshino-tui": tui_parser}


def commands() -> list[tuple[str, list[str]]]:
    """Each hoshino-agent or hoshino-tui command in README's shell blocks: (program, arguments); those
    that elide their flags (`...`) are left out."""
    found = []
    for block in SHELL_BLOCK.findall(README):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["sudo"]:
                words = words[1:]
            if words and words[0] in PARSERS and "..." not in words:
                found.append((words[0], [word for word in words[1:] if word != "&"]))
    return found


def test_the_flags_table_is_the_agents_flags() -> None:
    assert dict(TABLE_ROW.findall(README)) == {flag.name: flag.env for flag in FLAGS}


@pytest.mark.parametrize(("program", "argv"), commands(), ids=lambda value: " ".join(value)
                         if isinstance(value, list) else value)
def test_every_command_in_the_readme_parses(program: str, argv: list[str]) -> None:
    parser = PARSERS[program]()
    parser.exit_on_error = False
    try:
        parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as error:
        pytest.fail(f"README: {program} {shlex.join(argv)}: {error}")


def test_the_readme_shows_commands_of_both_programs() -> None:
    programs = [program for program, _ in commands()]
    assert programs.count("hoshino-agent") >= 3 and programs.count("hoshino-tui") >= 3, programs


def test_the_license_is_an_spdx_expression_that_current_setuptools_takes() -> None:
    """A license table is deprecated (pip warns); the SPDX string and license-files need setuptools 77."""
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = metadata["project"]
    assert project["license"] == "MIT"
    assert all((ROOT / name).is_file() for name in project["license-files"])
    assert "setuptools>=77" in metadata["build-system"]["requires"]


def test_the_service_does_not_retry_settings_that_cannot_work() -> None:
    """systemd restarts a failed agent, but not one whose flags or settings were refused: a retry fails alike."""
    unit = (ROOT / "deploy/systemd/hoshino-agent.service").read_text()
    assert "Restart=on-failure" in unit and f"RestartPreventExitStatus={USAGE_ERROR}" in unit.splitlines()
