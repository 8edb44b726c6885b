"""The routing flags: what they take, and that routing beyond a node's own addresses needs sealing."""

from __future__ import annotations

import argparse
import ipaddress

import pytest

from agent import ip
from agent.config import Config, ConfigError, add_arguments, config_from_args


def parse(*argv: str) -> Config:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return config_from_args(parser.parse_args(["--bucket", "b", *argv]))


SEALED = ("--key-file", "k", "--peers", "p")


def test_routing_flags_are_read():
    config = parse(*SEALED, "--advertise-routes", "192.0.2.0/24, 2001:db8:c::/48", "--accept-routes",
                   "--address4", "100.64.7.7")
    assert config.advertise_routes == (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8:c::/48"))
    assert config.accept_routes
    assert config.address4 == ipaddress.IPv4Address("100.64.7.7")
    exit_node = parse(*SEALED, "--advertise-exit-node", "--exit-interface", "eth0")
    assert exit_node.advertised == ip.DEFAULT_ROUTES
    assert exit_node.exit_interface == "eth0"
    assert exit_node.exit_tcp == "relay"
    assert parse(*SEALED, "--advertise-exit-node", "--exit-tcp", "forward").exit_tcp == "forward"
    assert parse(*SEALED, "--exit-node", "fd5e:59b8:f71d:9a3e::e").exit_node == ipaddress.IPv6Address(
        "fd5e:59b8:f71d:9a3e::e")
    assert parse(*SEALED, "--exit-node", "exit.eu-west-1").exit_node == "exit.eu-west-1"  # a peer's name


def test_a_switch_reads_its_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOSHINO_ACCEPT_ROUTES", "1")
    assert parse(*SEALED).accept_routes
    monkeypatch.setenv("HOSHINO_ACCEPT_ROUTES", "0")
    assert not parse(*SEALED).accept_routes


@pytest.mark.parametrize("flags", [("--advertise-exit-node",), ("--advertise-routes", "192.0.2.0/24"),
                                   ("--exit-node", "fd5e:59b8:f71d:9a3e::e"), ("--accept-routes",)])
def test_an_unsealed_node_refuses_to_route_with_one_line_reason(flags: tuple[str, ...]):
    with pytest.raises(ConfigError) as refused:
        parse(*flags)
    message = str(refused.value)
    assert message.startswith(f"{flags[0]} needs sealing (--key-file and --peers)")
    assert "\n" not in message


@pytest.mark.parametrize(("argv", "expected"), [
    (("--address4", "10.0.0.1"), "10.0.0.1 is outside 100.64.0.0/10"),
    (("--address4", "fd00::1"), "not an IPv4 address"),
    (("--advertise-routes", "192.0.2.1/24"), "did you mean 192.0.2.0/24"),
    (("--advertise-routes", "0.0.0.0/0"), "pass --advertise-exit-node instead"),
    ((*SEALED, "--exit-node", "fd5e::e", "--advertise-exit-node"), "an exit node or uses one, not both"),
    ((*SEALED, "--exit-interface", "eth0"), "pass --advertise-exit-node too"),
    ((*SEALED, "--exit-tcp", "forward"), "pass --advertise-exit-node too"),
    ((*SEALED, "--advertise-exit-node", "--exit-tcp", "proxy"), "--exit-tcp takes relay or forward, not 'proxy'"),
    ((*SEALED, "--exit-node", "100.64.0.14"), "is an IPv4 address"),
    ((*SEALED, "--exit-node", "fd5e::e::1"), "not an IPv6 address"),
    ((*SEALED, "--exit-node", "my exit"), "its name in the peers file"),
])
def test_bad_routing_flags_name_the_fix(argv: tuple[str, ...], expected: str):
    with pytest.raises((ConfigError, argparse.ArgumentError)) as refused:
        parse(*argv)
    assert expected in str(refused.value)
