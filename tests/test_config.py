"""Flags and environment variables."""

import argparse
import ipaddress

import pytest

from agent.config import Config, ConfigError, add_arguments, config_from_args, parse_duration, parse_listen


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


@pytest.mark.parametrize(("given", "used"), [("", ""), ("net1", "net1/"), ("net1/", "net1/"), ("a/b", "a/b/")])
def test_a_key_prefix_always_ends_in_a_slash(given, used):
    # Without it IAM's net1* would grant net10..., and prefix net with address 1::2:3 would be net1 with ::2:3.
    assert parse(["--bucket", "b", "--key-prefix", given]).key_prefix == used
    assert Config(bucket="b", key_prefix=given).key_prefix == used


LONG_PREFIX = "p" * 33  # with the longest address, hoshino-{33}-{39} is 81 characters
LONGEST = "fd5e:59b8:f71d:9a3e:ffff:ffff:ffff:ffff"


def test_a_prefix_too_long_for_a_queue_is_refused_with_the_doorbell_only():
    with pytest.raises(ConfigError, match=rf"--key-prefix '{LONG_PREFIX}/' is too long for a doorbell: the queue "
                                          rf"name 'hoshino-{LONG_PREFIX}-fd5e-59b8-.*' would be 81 characters long, "
                                          r"over the 80 characters SQS allows; shorten the prefix to 32 characters "
                                          r"before its '/', or pass --wakeup poll"):
        parse(["--bucket", "b", "--key-prefix", LONG_PREFIX, "--address", LONGEST, "--wakeup", "sqs"])
    assert parse(["--bucket", "b", "--key-prefix", LONG_PREFIX[1:], "--address", LONGEST, "--wakeup", "sqs"])
    polling = parse(["--bucket", "b", "--key-prefix", LONG_PREFIX, "--address", LONGEST])
    assert polling.wakeup == "poll" and polling.key_prefix == LONG_PREFIX + "/"
