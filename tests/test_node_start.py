"""A start that fails at any step undoes every step before it: no device, address, route, listener, thread or journal
lock is left."""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent import cli, netconf
from agent.config import Config
from agent.events import EventQueue
from agent.journal import Journal, JournalError, journal_name
from agent.lab import Namespace, S3Server, run_in, wait_until
from agent.node import Node, NodeError
from agent.sealing import encode_public_key, generate_key_file
from agent.transport import DoorbellError

NETWORK = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
ADDRESS = NETWORK.network_address + 0xA
PEER = NETWORK.network_address + 0xB
METRICS_PORT = 8081
STEPS = ("_open_sealing", "_open_bucket", "_open_journal", "_open_device", "_configure_device", "_serve_metrics",
         "_open_doorbell", "_start_loops")
"""Node.start's steps, in order."""


class Injected(DoorbellError):
    """The failure a test injects: one start() words as a NodeError."""


@pytest.fixture
def namespace() -> Iterator[str]:
    made = Namespace("start")
    try:
        yield made.name
    finally:
        made.close()


@pytest.fixture
def config(s3_server: S3Server, bucket: str, namespace: str, tmp_path: Path) -> Config:
    """A sealed node that waits on a doorbell and serves metrics: every step of start() has work to do."""
    generate_key_file(tmp_path / "a.key")
    peer_key = generate_key_file(tmp_path / "b.key")
    peers = tmp_path / "peers.toml"
    peers.write_text(f'[peers]\n"{PEER}" = "{encode_public_key(peer_key)}"\n')
    return Config(bucket=bucket, endpoint_url=s3_server.endpoint_url, network=NETWORK, address=ADDRESS,
                  netns=namespace, metrics_listen=("::", METRICS_PORT), wakeup="sqs",
                  sqs_endpoint_url=s3_server.endpoint_url, key_file=str(tmp_path / "a.key"), peers_file=str(peers),
                  state_dir=str(tmp_path / "state"))


def hoshino_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("hoshino")}


def left_behind(config: Config, before: set[threading.Thread]) -> list[str]:
    """What a node left in its namespace and process; [] when nothing."""
    namespace = config.netns
    assert namespace is not None and config.address is not None and config.state_dir is not None
    left = []
    try:  # a journal left open holds its lock
        Journal(Path(config.state_dir) / journal_name(config.bucket, config.key_prefix, config.address)).close()
    except JournalError:
        left.append("journal lock")
    if netconf.device_exists("hoshino0", namespace):
        left.append("device")
    if ADDRESS.compressed in run_in(namespace, "ip", "-6", "addr", "show").stdout:
        left.append("address")
    if str(NETWORK) in run_in(namespace, "ip", "-6", "route", "show").stdout:
        left.append("route")
    if f":{METRICS_PORT}" in run_in(namespace, "ss", "-Hltn").stdout:
        left.append("metrics listener")
    if not wait_until(lambda: hoshino_threads() <= before, 15):
        left.append(f"threads {sorted(t.name for t in hoshino_threads() - before)}")
    return left


def failing(real: Callable[..., object], error: BaseException, first: bool) -> Callable[..., object]:
    """The step, made to fail before it does its work (first) or after it."""
    def step(*args: object, **kwargs: object) -> object:
        if not first:
            real(*args, **kwargs)
        raise error
    return step


@pytest.mark.root
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_start_failing_at_any_step_leaves_nothing(config: Config, monkeypatch: pytest.MonkeyPatch,
                                                    step: str, when: str) -> None:
    before = hoshino_threads()
    monkeypatch.setattr(Node, step, failing(getattr(Node, step), Injected(f"injected in {step}"), when == "before"))
    node = Node(config, EventQueue())
    with pytest.raises(NodeError, match=f"^injected in {step}$"):
        node.start()
    assert node.state == "failed" and node.error == f"injected in {step}"
    assert left_behind(config, before) == []
    node.stop()  # as the dashboard does after a failed start: nothing more to undo, and the cause kept
    assert node.wait(1)
    assert node.state == "failed" and node.error == f"injected in {step}"


@pytest.mark.root
def test_an_unexpected_failure_is_raised_as_it_is_and_still_leaves_nothing(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    before = hoshino_threads()
    monkeypatch.setattr(Node, "_start_loops", failing(Node._start_loops, ZeroDivisionError("a bug"), first=False))
    with pytest.raises(ZeroDivisionError):
        Node(config, EventQueue()).start()
    assert left_behind(config, before) == []


@pytest.mark.root
def test_every_step_runs_in_a_start_that_works(config: Config, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def recorded(step: str) -> Callable[..., object]:
        real = getattr(Node, step)

        def run(*args: object, **kwargs: object) -> object:
            ran.append(step)
            return real(*args, **kwargs)
        return run

    for step in STEPS:
        monkeypatch.setattr(Node, step, recorded(step))
    before = hoshino_threads()
    node = Node(config, EventQueue())
    node.start()
    try:
        assert ran == list(STEPS)  # the test above injects a failure at each step there is
        assert node.doorbell is not None and node.sealed is not None
        assert f":{METRICS_PORT}" in run_in(namespace, "ss", "-Hltn").stdout
    finally:
        node.stop()
    assert left_behind(config, before) == []


@pytest.mark.root
@pytest.mark.parametrize(("thread", "loop"), [("hoshino-deliver", "agent.delivery.Delivery.run"),
                                              ("hoshino-delete", "agent.deleter.Deleter.run")])
def test_a_bug_in_a_receive_loop_stops_the_node_saying_which_and_leaves_nothing(
        config: Config, monkeypatch: pytest.MonkeyPatch, thread: str, loop: str) -> None:
    def broken(self: object, stop: threading.Event) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(loop, broken)
    before = hoshino_threads()
    node = Node(config, EventQueue())
    node.start()
    assert node.wait(15), "a receive loop that failed left the node running"
    assert node.state == "failed" and node.error == f"{thread} failed: ZeroDivisionError: a bug"
    assert left_behind(config, before) == []


def test_the_cli_turns_any_start_failure_into_one_line(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def start(self: Node) -> None:
        raise DoorbellError("SQS queue hoshino-x: access denied")

    monkeypatch.setattr(Node, "start", start)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main() must not take over pytest's signals
    status = cli.main(["--bucket", "b", "--address", str(ADDRESS), "--metrics-listen", "off"])
    assert status == 1
    assert capsys.readouterr().err == "hoshino-agent: error: SQS queue hoshino-x: access denied\n"


def test_a_derived_address_too_long_for_the_doorbell_is_refused_before_anything_changes(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("7d3c9a1b2e4f60718293a4b5c6d7e8f9\n")
    config = Config(bucket="b", key_prefix="p" * 40, machine_id_file=str(machine_id), wakeup="sqs")
    with pytest.raises(NodeError, match=r"--key-prefix 'p{40}/' is too long for a doorbell: .*--wakeup poll"):
        Node(config)
    assert Node(Config(bucket="b", key_prefix="p" * 40, machine_id_file=str(machine_id))).config.wakeup == "poll"


@pytest.mark.root
def test_a_polling_node_starts_with_a_prefix_too_long_for_any_queue(config: Config) -> None:
    before = hoshino_threads()
    polling = replace(config, wakeup="poll", key_prefix="p" * 60)
    node = Node(polling, EventQueue())
    node.start()  # it needs no queue of its own, and will ring none that cannot exist
    try:
        assert node.state == "running" and node.doorbell is None
    finally:
        node.stop()
    assert left_behind(polling, before) == []
