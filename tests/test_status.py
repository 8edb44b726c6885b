"""hoshino-agent status on three sealed lab nodes: one node lists the other two, with the bytes their own
counters show, as an unprivileged user, each peer's page read through the tunnel."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.lab import Lab, run_in, wait_until
from agent.lab.nodes import ROLES
from agent.lab.peers_files import RoutingKeys
from agent.lab.traffic import fetch_metrics
from agent.netconf import inside
from agent.scrape import NodeReport, parse
from agent.sealing import key_id, load_private_key
from hoshino_tui.network import NetworkSource

pytestmark = pytest.mark.root
TRIO = (*ROLES, "third")
NOBODY = 65534


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[tuple[Lab, RoutingKeys]]:
    """Three sealed nodes, each listing the other two by name."""
    with Lab(bucket=f"lab-{secrets.token_hex(4)}", roles=TRIO) as lab:
        keys = RoutingKeys(tmp_path, {role: lab.address(role) for role in TRIO})
        for role in TRIO:
            keys.write_peers(role, {other: [] for other in TRIO if other != role})
            lab.spawn_agent(role, *keys.flags(role))
        yield lab, keys


def own_page(lab: Lab, role: str) -> NodeReport:
    """A node's page read in its own namespace, on its own address: no tunnel traffic."""
    with inside(lab.namespaces[role].name):
        return parse(fetch_metrics(lab.address(role)))


def ping(lab: Lab, source: str, destination: str, count: int) -> None:
    result = run_in(lab.namespaces[source].name, "ping", "-6", "-n", "-c", str(count), "-i", "0.2", "-W", "5",
                    str(lab.address(destination)), timeout=60)
    assert result.returncode == 0, result.stdout


def settled(lab: Lab) -> dict[str, NodeReport] | None:
    """Every node's page, once each pair's bytes agree both ways (nothing left in flight), else None."""
    pages = {role: own_page(lab, role) for role in TRIO}
    for role in TRIO:
        for other in TRIO:
            if other == role:
                continue
            sent = pages[role].peers[str(lab.address(other))].bytes_out
            if sent != pages[other].peers[str(lab.address(role))].bytes_in:
                return None
    return pages


def run_status(lab: Lab, *extra: str) -> dict[str, Any]:
    """hoshino-agent status --json as nobody, in the local node's namespace: what any user there can run."""
    command = ["ip", "netns", "exec", lab.namespaces["local"].name,
               "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",  # util-linux's
               sys.executable, "-m", "agent", "status", "--json", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_status_lists_the_other_two_nodes_with_the_bytes_their_counters_show(trio: tuple[Lab, RoutingKeys]):
    lab, keys = trio
    ping(lab, "local", "peer", 3)
    ping(lab, "local", "third", 2)
    ping(lab, "peer", "third", 4)
    pages: dict[str, NodeReport] = {}
    assert wait_until(lambda: pages.update(settled(lab) or {}) or pages, timeout=20), "the counters never agreed"

    status = run_status(lab, "--pace", "0")  # one reading: the bytes as the pages above show them

    node = status["node"]
    assert node["address"] == str(lab.address("local"))
    assert node["key_id"] == key_id(load_private_key(keys.directory / "local.key").public_key()).hex()
    assert (node["state"], node["wakeup"]) == ("running", "sqs")
    by_name = {peer["name"]: peer for peer in status["peers"]}
    assert sorted(by_name) == ["peer", "third"]
    local = str(lab.address("local"))
    for role in ("peer", "third"):
        line, theirs = by_name[role], pages[role].peers[local]
        assert line["peer"] == str(lab.address(role))
        assert line["bytes_out"] == theirs.bytes_in > 0, (line, theirs)
        assert line["bytes_in"] == theirs.bytes_out > 0, (line, theirs)
        assert line["packets_out"] == theirs.packets_in
        assert line["last_heard"] is not None and line["last_heard"] <= status["time"] + 2
        assert line["requests_per_day"] > 0 and line["dollars_per_day"] > 0
        assert line["metrics"] == "answers", line

    # At the current pace: the page read again 2 s later; the probes through the tunnel came between.
    current = run_status(lab)
    assert current["pace"].startswith("the last ")
    assert all(peer["requests_per_day"] > 0 for peer in current["peers"]), current["peers"]


    # The network screen's reading of the same pages, from the node's namespace through the tunnel.
    local, probed = NetworkSource.of(lab.config("local")).read()
    assert isinstance(local, NodeReport) and local.address == str(lab.address("local"))
    assert sorted(probed) == sorted(str(lab.address(role)) for role in ("peer", "third"))
    assert all(isinstance(report, NodeReport) for report in probed.values()), probed

    # A node that stops is told apart: its page no longer answers through the tunnel.
    third = lab.agents[TRIO.index("third")]
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=20) == 0
    lines = {peer["name"]: peer for peer in run_status(lab)["peers"]}
    assert lines["peer"]["metrics"] == "answers"
    assert lines["third"]["metrics"].startswith("unreachable ("), lines["third"]
