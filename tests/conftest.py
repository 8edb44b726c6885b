"""Shared fixtures: a real S3 API server on 127.0.0.1, and the root-only lab."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy

from agent.lab import Lab, S3Server, make_s3_server


def root_skip_reason() -> str:
    """Why root-only tests cannot run here, or '' when they can."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) for TUN devices and network namespaces: run as root"
    if not Path("/dev/net/tun").exists():
        return "needs /dev/net/tun: load the tun module (modprobe tun)"
    return ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = root_skip_reason()
    if reason:
        for item in items:
            if "root" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True, scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Agents the tests start by hand keep their delivered keys here, never in /var/lib/hoshino."""
    path = tmp_path_factory.mktemp("state")
    previous = os.environ.get("HOSHINO_STATE_DIR")
    os.environ["HOSHINO_STATE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("HOSHINO_STATE_DIR", None)
    else:
        os.environ["HOSHINO_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 server in its own process on a free port of 127.0.0.1: moto's, or SeaweedFS's when
    HOSHINO_TEST_S3=seaweedfs (SQS is moto's only: tests of the doorbell need moto)."""
    with make_s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the local server."""
    name = f"test-{secrets.token_hex(4)}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture
def lab() -> Iterator[Lab]:
    """S3 server, bucket and two namespaces; removed after the test, even when it fails."""
    with Lab(bucket=f"lab-{secrets.token_hex(4)}") as running:
        yield running


@pytest.fixture
def fault_proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the local S3 server (tests/fault_proxy.py); stopped after the test."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        yield proxy
