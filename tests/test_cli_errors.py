"""Errors a user can act on name the cause and the fix: bad flags, a busy namespace, S3 trouble said once."""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pilot_helpers import wait_for

from agent.config import Config, ConfigError, add_arguments, config_from_args
from agent.events import EventQueue
from agent.lab import Namespace, S3Server
from agent.netconf import NetconfError
from agent.node import Node, NodeError
from agent.tun import Tun
from agent.usage import USAGE_ERROR
from hoshino_tui.controls import NodeControl


def parse(*argv: str) -> Config:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return config_from_args(parser.parse_args(["--bucket", "b", *argv]))


def refusal(*argv: str) -> str:
    """The message a bad flag gets, whether argparse or config_from_args refuses it."""
    with pytest.raises((ConfigError, argparse.ArgumentError)) as raised:
        parse(*argv)
    return str(raised.value)


@pytest.mark.parametrize(("argv", "expected"), [
    (("--network", "::/0"), "every IPv6 address"),
    (("--network", "10.0.0.0/8"), "is an IPv4 network: --network is the IPv6 /64"),
    (("--network", "fd00::1/64"), "did you mean fd00::/64?"),
    (("--network", "fe80::/64"), "link-local"),
    (("--network", "ff00::/64"), "multicast"),
    (("--network", "fd00::/80"), "longer than /64"),
    (("--network", "fd00::/48"), "first /64 (fd00::/64) plus the first 64 bits of its machine-id"),
    (("--address", "10.0.0.1"), "IPv4 address"),
    (("--address", "fd00::1"), "outside --network fd5e:59b8:f71d:9a3e::/64"),
    (("--interface", "a-very-long-name"), "16 bytes long: Linux allows at most 15"),
    (("--interface", "bad/name"), "cannot be '.' or '..' nor hold '/'"),
    (("--slowest-poll", "0"), "--slowest-poll must be above zero"),
    (("--fastest-poll", "0"), "--fastest-poll must be above zero"),
    (("--fastest-poll", "2s", "--slowest-poll", "1s"), "--fastest-poll 2s is longer than --slowest-poll 1s"),
    (("--key-prefix", "p" * 50, "--wakeup", "sqs", "--address", "fd5e:59b8:f71d:9a3e::a"),
     "is too long for a doorbell: the queue name 'hoshino-pppp"),
])
def test_bad_flags_name_the_cause_and_the_fix(argv: tuple[str, ...], expected: str) -> None:
    message = refusal(*argv)
    assert expected in message
    assert "parts expected" not in message and "Errno" not in message


def test_a_shorter_network_is_accepted_with_explicit_addresses() -> None:
    config = parse("--network", "fd00::/48", "--address", "fd00:0:0:5::1")
    assert config.network == ipaddress.IPv6Network("fd00::/48")


def test_a_name_linux_would_cut_short_is_refused_before_any_device_exists() -> None:
    with pytest.raises(NetconfError, match="at most 15; pass a shorter --interface"):
        Tun("sixteen-bytes-xx")


@pytest.fixture
def namespace() -> Iterator[str]:
    made = Namespace("errors")
    try:
        yield made.name
    finally:
        made.close()


def node(s3_server: S3Server, bucket: str, netns: str, interface: str, address: str, state_dir: Path) -> Node:
    """A node with a state directory of its own: its journal's lock does not stand in for the device's."""
    config = parse("--bucket", bucket, "--endpoint-url", s3_server.endpoint_url, "--netns", netns,
                   "--interface", interface, "--address", address, "--metrics-listen", "off",
                   "--state-dir", str(state_dir))
    return Node(config, EventQueue())


@pytest.mark.root
def test_a_second_agent_in_the_same_namespace_is_told_what_holds_it(s3_server: S3Server, bucket: str,
                                                                     namespace: str, tmp_path: Path) -> None:
    first = node(s3_server, bucket, namespace, "hoshino0", "fd5e:59b8:f71d:9a3e::a", tmp_path / "a")
    first.start()
    try:
        same_device = node(s3_server, bucket, namespace, "hoshino0", "fd5e:59b8:f71d:9a3e::a", tmp_path / "b")
        with pytest.raises(NodeError, match=r"hoshino0 is in use by another program .another hoshino-agent.*--netns"):
            same_device.start()
        same_address = node(s3_server, bucket, namespace, "hoshino1", "fd5e:59b8:f71d:9a3e::a", tmp_path / "c")
        with pytest.raises(NodeError, match=r"already in use on hoshino0: another hoshino-agent .* --address"):
            same_address.start()
        same_network = node(s3_server, bucket, namespace, "hoshino2", "fd5e:59b8:f71d:9a3e::c", tmp_path / "d")
        with pytest.raises(NodeError) as raised:
            same_network.start()
        message = str(raised.value)
        assert f"namespace {namespace} already routes fd5e:59b8:f71d:9a3e::/64 through hoshino0" in message
        assert "--network or --netns" in message and "File exists" not in message
    finally:
        first.stop()


@pytest.mark.root
def test_an_s3_error_is_printed_once(s3_server: S3Server, namespace: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--bucket", "no-such-bucket", "--endpoint-url", s3_server.endpoint_url,
         "--netns", namespace, "--metrics-listen", "off"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("the bucket does not exist") == 1, result.stderr
    assert "hoshino-agent: error: bucket 'no-such-bucket': the bucket does not exist" in result.stderr
    assert "WARNING" not in result.stderr


def test_the_demo_without_the_lab_extra_names_it(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from hoshino_tui import cli

    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "moto" else real(name, *rest))
    assert cli.main(["--demo"]) == 2
    message = capsys.readouterr().err
    assert "install the lab extra" in message and ".[lab]" in message and "missing: moto" in message


@pytest.mark.parametrize(("argv", "expected"), [
    (["--replay", "x", "--speed", "-1"], "the speed cannot be negative"),
    (["--replay", "x", "--speed", "fast"], "not a speed: 'fast'"),
    (["--replay", "x", "--record", "y"], "--record records a running node"),
])
def test_replay_flags_that_cannot_work_are_refused(argv: list[str], expected: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from hoshino_tui import cli

    with pytest.raises(SystemExit):
        cli.main(argv)
    assert expected in capsys.readouterr().err


def test_the_help_says_what_each_signal_does_and_that_the_prefix_ends_in_a_slash() -> None:
    from agent.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "Stops cleanly on SIGINT or SIGTERM. SIGHUP reloads the peers file of a sealed node" in text
    assert "a '/' is added when it does not end in one" in text


def usage_error(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines a command prints for a usage error, after checking it exits 2."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == USAGE_ERROR
    return capsys.readouterr().err.splitlines()


def agent_main(argv: list[str]) -> int:
    from agent.cli import main

    return main(argv)


def tui_main(argv: list[str]) -> int:
    from hoshino_tui.cli import main

    return main(argv)


@pytest.mark.parametrize("main", [agent_main, tui_main])
@pytest.mark.parametrize("flag", ["--endpoint-url", "--sqs-endpoint-url"])
def test_an_endpoint_without_a_scheme_is_told_to_add_one(main: Callable[[list[str]], int], flag: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    lines = usage_error(main, ["--bucket", "b", flag, "127.0.0.1:5555"], capsys)
    assert len(lines) == 2, lines
    assert lines[-1].endswith("'127.0.0.1:5555' has no scheme: add http:// or https://, as in http://127.0.0.1:5555")
    assert f"argument {flag}" in lines[-1]


@pytest.mark.parametrize(("url", "expected"), [
    ("localhost:5555", "has no scheme: add http:// or https://"),
    ("ftp://127.0.0.1:5555", "an endpoint is http:// or https://, not ftp://"),
    ("http://", "names no host"),
    ("http://127.0.0.1:99999", "the port is not a number from 1 to 65535"),
])
def test_an_endpoint_that_cannot_be_reached_by_http_is_named(url: str, expected: str) -> None:
    assert expected in refusal("--endpoint-url", url)


def test_a_url_with_a_scheme_is_taken_as_written() -> None:
    assert parse("--endpoint-url", "https://s3.example.com").endpoint_url == "https://s3.example.com"
    assert parse("--endpoint-url", "http://[::1]:5555").endpoint_url == "http://[::1]:5555"


@pytest.mark.parametrize(("name", "expected"), [
    ("my bucket", "a bucket name cannot hold ' '"),
    ("packets!", "a bucket name cannot hold '!'"),
    ("b" * 300, "is 300 characters long"),
])
def test_a_bad_bucket_name_gets_one_line_not_a_regular_expression(name: str, expected: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lines = usage_error(agent_main, ["--bucket", name], capsys)
    assert len(lines) == 2 and expected in lines[-1], lines
    assert "regex" not in lines[-1] and "^[" not in lines[-1]


def test_a_usage_error_is_two_lines_ending_in_the_one_that_matters(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own would print every flag's usage first; here a pointer to --help, then the error."""
    for main, prog in ((agent_main, "hoshino-agent"), (tui_main, "hoshino-tui")):
        lines = usage_error(main, ["--bucket", "b", "--mtu", "big"], capsys)
        assert lines == [f"usage: {prog} ... ({prog} --help lists every flag)",
                         f"{prog}: error: argument --mtu: invalid int value: 'big'"]
    lines = usage_error(agent_main, ["--bucket", "b", "--mtu", "100"], capsys)  # refused by config_from_args
    assert lines[-1] == "hoshino-agent: error: --mtu 100: IPv6 needs 1280 to 65535" and len(lines) == 2
    lines = usage_error(agent_main, ["genkey"], capsys)
    assert len(lines) == 2 and lines[-1].startswith("hoshino-agent genkey: error:")


def test_speed_without_a_replay_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    lines = usage_error(tui_main, ["--demo", "--speed", "10"], capsys)
    assert lines[-1] == "hoshino-tui: error: --speed is the pace of a replay: use it with --replay FILE"


def test_the_dashboards_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    from agent import __version__
    from hoshino_tui.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "S3 bucket that carries the packets (required, except with --demo or --replay)" in text
    assert "--pcap-dir DIR" in text and "--state-dir DIR" in text
    assert "Exits 0 when quit, 1 when the node failed" in text
    with pytest.raises(SystemExit) as raised:
        tui_main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"hoshino-tui {__version__}"


async def test_the_dashboard_exits_1_after_its_node_failed(capsys: pytest.CaptureFixture[str]) -> None:
    from hoshino_tui.app import HoshinoApp
    from hoshino_tui.cli import exit_status

    def cannot_start() -> NodeControl:
        raise NodeError("needs CAP_NET_ADMIN: run as root")

    app = HoshinoApp(EventQueue(), cannot_start, config=Config(bucket="b"))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.state == "failed")
        await pilot.press("q")
    assert exit_status(app) == 1
    assert capsys.readouterr().err == "hoshino-tui: error: needs CAP_NET_ADMIN: run as root\n"
    assert exit_status(HoshinoApp(EventQueue(), cannot_start)) == 0  # a node that never failed: 0
