"""Recordings of a node's event stream: JSON lines, gzip when the name ends .gz, readable as events grow."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import threading
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from agent.events import Event, EventQueue

FORMAT = "hoshino-events"
VERSION = 1
FLUSH_PERIOD = 1.0
"""At most this long between a write and the bytes reaching the file, so a killed recorder loses little."""
GZIP_MAGIC = b"\x1f\x8b"

EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in typing.get_args(Event)}


class RecordingError(ValueError):
    """A file that cannot be read as a recording, with what to do about it."""


def encode(event: Event) -> str:
    """One event as a JSON line (without the newline): its type name and its fields, bytes as base64."""
    data: dict[str, Any] = {"type": type(event).__name__}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        data[field.name] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return json.dumps(data, separators=(",", ":"))


def decode(line: str) -> Event | None:
    """The event a JSON line holds, or None for a kind of event this version does not know.

    Fields it does not know are ignored; fields it misses take their defaults (or an empty value of
    their type), so recordings made before or after an event grew a field still play."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            values[field.name] = _typed(hints[field.name], data[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            values[field.name] = _empty(hints[field.name])
    event: Event = cls(**values)
    return event


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _typed(hint: Any, value: Any) -> Any:
    """A JSON value as the field's type wants it: bytes come back from base64."""
    if hint is bytes and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _empty(hint: Any) -> Any:
    """The empty value of a type, for a field a recording lacks that has no default."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return typing.get_args(hint)[0]
    if origin in (typing.Union, types.UnionType):
        if type(None) in typing.get_args(hint):
            return None
        return _empty(typing.get_args(hint)[0])
    kind = origin or hint
    return kind() if kind in (bytes, str, int, float, bool, dict, list, tuple) else None


def _open(path: Path, mode: str) -> IO[str]:
    if mode == "w":
        if path.name.endswith(".gz"):
            return gzip.open(path, "wt", encoding="utf-8")
        return path.open("w", encoding="utf-8")
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rt", encoding="utf-8") if compressed else path.open("r", encoding="utf-8")


class Recorder:
    """Writes events to a recording as they come; safe to close from another thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: IO[str] | None = _open(path, "w")
        except OSError as error:
            raise RecordingError(f"cannot write the recording {path}: {error.strerror}") from None
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        self.count = 0
        self._file.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")

    def write(self, event: Event) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(encode(event) + "\n")
            self.count += 1
            if time.monotonic() - self._flushed >= FLUSH_PERIOD:
                self._file.flush()
                self._flushed = time.monotonic()

    def close(self) -> None:
        """Write out what is buffered and close the file; later writes are ignored."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class RecordingQueue(EventQueue):
    """An event queue that writes each event its reader takes to a recording.

    The reader's thread does the writing, so the agent's threads still publish without waiting."""

    def __init__(self, recorder: Recorder, maxsize: int = 8192) -> None:
        super().__init__(maxsize)
        self.recorder = recorder

    def get(self, timeout: float | None = None) -> Event:
        event = super().get(timeout)
        self.recorder.write(event)
        return event

    def drain(self, limit: int = 10_000) -> list[Event]:
        events = super().drain(limit)
        for event in events:
            self.recorder.write(event)
        return events


class Playback:
    """The events of a recording, read lazily in order; skipped counts the lines it could not use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        try:
            with _open(path, "r") as file:
                first = file.readline()
        except OSError as error:
            raise RecordingError(f"cannot read the recording {path}: {error.strerror}") from None
        except (EOFError, UnicodeDecodeError, gzip.BadGzipFile):
            first = ""
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RecordingError(f"{path} is not a recording of hoshino-tui --record (JSON lines, maybe gzip)")

    def __iter__(self) -> Iterator[Event]:
        with _open(self.path, "r") as file:
            file.readline()
            while True:
                try:
                    line = file.readline()
                except (EOFError, OSError, UnicodeDecodeError):
                    return  # a recording cut short (the recorder was killed): play what is there
                if not line:
                    return
                try:
                    event = decode(line)
                except (ValueError, TypeError):
                    event = None
                if event is None:
                    self.skipped += 1
                    continue
                yield event
