"""Counted nouns, for every line the agent and the dashboard write: '1 packet', '2 packets'."""

from __future__ import annotations


def noun(n: float, word: str, many: str | None = None) -> str:
    """word for one, its plural (many, else word + 's') for any other number."""
    return word if n == 1 else (many or word + "s")


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 byte', '1,500 bytes'."""
    return f"{n:,} {noun(n, word, many)}"
