"""Recordings of the event stream: every event round-trips, old and new fields are tolerated, replay paces."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from agent import wire
from agent.events import EventQueue, NodeStarted, NodeStopped, Notice, PacketSeen, StatsSampled
from agent.lab import wait_until
from agent.lab.recorded import LOCAL, PEER, echo, packet_event, recorded_events, sample_packets
from agent.lab.replay import RecordingNode
from agent.recording import Playback, Recorder, RecordingError, RecordingQueue, decode, encode

DEMO = Path(__file__).parent / "data" / "demo.jsonl.gz"


def record(path: Path, events: list) -> None:
    recorder = Recorder(path)
    for event in events:
        recorder.write(event)
    recorder.close()


@pytest.mark.parametrize("name", ["run.jsonl", "run.jsonl.gz"])
def test_every_event_round_trips_plain_and_gzip(tmp_path: Path, name: str) -> None:
    events = recorded_events()
    assert {type(event) for event in events} == {NodeStarted, StatsSampled, PacketSeen, Notice}
    events.append(NodeStopped(events[-1].time + 1, "gone"))
    path = tmp_path / name
    record(path, events)
    with path.open("rb") as file:
        assert (file.read(2) == b"\x1f\x8b") == name.endswith(".gz")
    played = Playback(path)
    assert list(played) == events
    assert played.skipped == 0


def test_bytes_are_base64_and_fields_are_named() -> None:
    event = packet_event(1.5, echo(LOCAL, PEER, 7, 3), "out", key="k")
    data = json.loads(encode(event))
    assert data["type"] == "PacketSeen" and data["source"] == LOCAL and data["time"] == 1.5
    assert isinstance(data["packet"], str) and decode(encode(event)) == event


def test_unknown_fields_are_ignored_and_missing_ones_take_defaults() -> None:
    newer = {"type": "Notice", "time": 2.0, "level": "info", "message": "hello", "colour": "blue"}
    assert decode(json.dumps(newer)) == Notice(2.0, "info", "hello")
    older = {"type": "PacketSeen", "time": 1.0, "direction": "in", "source": "a", "destination": "b",
             "protocol": "UDP", "summary": "UDP 1->2", "length": 9, "key": "k", "verdict": "delivered"}
    event = decode(json.dumps(older))
    assert isinstance(event, PacketSeen) and event.reason == "" and event.packet == b""
    # A field the event grew without a default still gets a value of its type.
    bare = decode(json.dumps({"type": "StatsSampled", "time": 3.0}))
    assert isinstance(bare, StatsSampled)
    assert (bare.state, bare.interval, bare.s3_ops, bare.manual, bare.wakeup) == ("starting", 0.0, {}, False, "poll")
    assert decode(json.dumps({"type": "SomethingNew", "time": 1.0})) is None


def test_a_recording_cut_short_plays_what_is_there(tmp_path: Path) -> None:
    events = recorded_events()[:50]
    whole = tmp_path / "whole.jsonl.gz"
    record(whole, events)
    raw = gzip.decompress(whole.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(raw)[:-200])  # the recorder was killed mid-write
    played = list(Playback(cut))
    assert 0 < len(played) < len(events) and played == events[:len(played)]
    odd = tmp_path / "odd.jsonl"
    lines = raw.decode().splitlines()
    odd.write_text("\n".join([lines[0], lines[1], "{not json", json.dumps({"type": "Later"}), lines[2]]) + "\n")
    playback = Playback(odd)
    assert list(playback) == events[:2] and playback.skipped == 2


def test_a_file_that_is_no_recording_says_so(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(RecordingError, match="not a recording of hoshino-tui --record"):
        Playback(other)
    with pytest.raises(RecordingError, match="cannot read the recording"):
        Playback(tmp_path / "missing.jsonl")


def test_the_recording_queue_writes_what_its_reader_takes(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl.gz"
    recorder = Recorder(path)
    queue = RecordingQueue(recorder)
    events = recorded_events()[:20]
    for event in events:
        queue.publish(event)
    taken = [queue.get(timeout=1), *queue.drain()]
    recorder.close()
    assert taken == events
    assert list(Playback(path)) == events


def test_replay_at_speed_zero_publishes_everything_and_rebuilds_carried_objects(tmp_path: Path) -> None:
    packets = sample_packets()
    bundle_key = f"{PEER}/01KAZSR6KG0000000000000004"
    events = [
        *recorded_events()[:1],
        packet_event(100.0, packets["echo"], "out", key=bundle_key),
        packet_event(100.0, packets["syn"], "out", key=bundle_key),
        packet_event(100.1, packets["reply"], "in", "delivered", key=f"{LOCAL}/01KAZSR91M0000000000000005"),
        packet_event(100.2, packets["udp"], "out", "ignored", "multicast"),
    ]
    path = tmp_path / "run.jsonl"
    record(path, events)
    queue = EventQueue()
    node = RecordingNode(path, queue, speed=0)
    assert str(node.address) == LOCAL
    node.start()
    got: list = []
    assert wait_until(lambda: got.extend(queue.drain()) or (got and isinstance(got[-1], Notice)), 5)
    assert got == [*events, Notice(100.2, "info", "end of the recording")]
    carried = node.recent_objects()
    assert [(obj.direction, obj.key) for obj in carried] == [("out", bundle_key), ("in", events[3].key)]
    assert wire.decode(carried[0].body).packets == [packets["echo"], packets["syn"]]
    assert node.clock() == 100.2
    node.stop()
    assert node.wait(1)
    assert isinstance(queue.drain()[-1], NodeStopped)


def test_replay_keeps_the_recorded_pace_and_the_heartbeat_keys_hold_the_interval(tmp_path: Path) -> None:
    run = recorded_events()
    events = [event for event in run if event.time <= run[0].time + 3]
    path = tmp_path / "run.jsonl"
    record(path, events)
    queue = EventQueue()
    node = RecordingNode(path, queue, speed=2)  # three recorded seconds in one and a half
    node.slower()
    node.start()
    time.sleep(0.3)
    assert 0 < node.published < len(events)
    assert wait_until(lambda: node.published == len(events), 10)
    shown = [event for event in queue.drain() if isinstance(event, StatsSampled)]
    assert shown and all(event.manual and event.interval == node.interval for event in shown)
    node.automatic()
    assert not node.manual
    node.stop()


def test_the_committed_demo_recording_is_a_real_run() -> None:
    events = list(Playback(DEMO))
    kinds = {type(event) for event in events}
    assert {NodeStarted, StatsSampled, PacketSeen} <= kinds
    verdicts = {(event.protocol, event.verdict) for event in events if isinstance(event, PacketSeen)}
    assert {("ICMPv6", "sent"), ("ICMPv6", "delivered"), ("TCP", "sent"), ("UDP", "delivered")} <= verdicts
    assert events[-1].time - events[0].time > 60
