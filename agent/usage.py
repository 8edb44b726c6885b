"""The command line's usage errors: two lines, not the whole usage, and one exit status for them.

Exit statuses of hoshino-agent and hoshino-tui (README, Exit status): 0 a clean stop, 1 an error
met while starting or running, USAGE_ERROR a flag or setting that cannot work, refused before
anything changed (argparse's own convention).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

USAGE_ERROR = 2
"""The exit status of a usage error, as argparse gives it."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors say what is wrong in one line, after a one-line pointer to --help.

    argparse prints the whole usage first, which for a few dozen flags is ten lines that push the one
    that matters out of sight."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"usage: {self.prog} ... ({self.prog} --help lists every flag)\n"
                               f"{self.prog}: error: {message}\n")
