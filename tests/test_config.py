"""Flags and environment variables."""

import argparse
import ipaddress

import pytest

from agent.config import ConfigError, add_arguments, config_from_args, parse_duration, parse_listen


def parse(argv, monkeypatch=None):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_defaults():
    config = parse(["--bucket", "b"])
    assert config.interface == "hoshino0"
    assert config.mtu == 53049
    assert config.network == ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
    assert config.slowest_poll == 0.5
    assert config.fastest_poll == 0.001
    assert config.metrics_listen == ("::", 8081)


def test_environment_sets_defaults(monkeypatch):
    monkeypatch.setenv("HOSHINO_BUCKET", "from-env")
    monkeypatch.setenv("HOSHINO_SLOWEST_POLL", "2s")
    monkeypatch.setenv("HOSHINO_METRICS_LISTEN", "off")
    config = parse([])
    assert (config.bucket, config.slowest_poll, config.metrics_listen) == ("from-env", 2.0, None)


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("1s", 1.0), ("2m", 120.0), ("0.25", 0.25)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "listen"), [("[::]:8081", ("::", 8081)), ("127.0.0.1:9", ("127.0.0.1", 9))])
def test_listen(text, listen):
    assert parse_listen(text) == listen


def test_missing_bucket_names_the_fix():
    with pytest.raises(ConfigError, match="--bucket"):
        parse([])


def test_bad_mtu_is_refused():
    with pytest.raises(ConfigError, match="1280 to 65535"):
        parse(["--bucket", "b", "--mtu", "70000"])
