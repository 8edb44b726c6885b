"""What hoshino-agent says at start and at stop, what each signal does to it, and that no stop ends in a traceback."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from agent.lab import Lab, run_in, wait_until
from agent.sealing import encode_public_key, generate_key_file
from agent.transport.sqs import queue_name

pytestmark = pytest.mark.root


def stopped_cleanly(lab: Lab, agent: subprocess.Popen[bytes]) -> str:
    """The agent's whole output, once it has exited 0 with one line saying it stopped and no traceback."""
    assert agent.wait(20) == 0, lab.agent_log(agent)
    log = lab.agent_log(agent)
    assert log.count("hoshino-agent: stopped after ") == 1, log
    assert "hoshino0 removed, with its addresses and routes" in log
    assert "Traceback" not in log and "CancelledError" not in log and "Exception in thread" not in log, log
    return log


def test_an_unsealed_agent_says_what_wakes_it_and_stops_on_sighup(lab: Lab) -> None:
    """The lab made the local node's doorbell queue beforehand: found. The peer's, under a prefix of its own,
    the agent makes: created. SIGHUP stops an unsealed node, which has no peers file to reload."""
    local = lab.spawn_agent("local")
    first = lab.agent_log(local).splitlines()[0]
    assert first == (f"hoshino-agent: {lab.local_address} on hoshino0 in {lab.namespaces['local'].name}, "
                     f"bucket {lab.bucket}, unsealed, wakes by doorbell queue "
                     f"{queue_name('', lab.local_address)} (found)")
    peer = lab.spawn_agent("peer", "--key-prefix", "fresh/")
    assert f"unsealed, wakes by doorbell queue {queue_name('fresh/', lab.peer_address)} (created)" in \
        lab.agent_log(peer)
    local.send_signal(signal.SIGHUP)
    log = stopped_cleanly(lab, local)
    assert re.search(r"\d[\d,]* packets? out", log.splitlines()[-1])
    peer.send_signal(signal.SIGINT)
    stopped_cleanly(lab, peer)


def test_a_sealed_agent_on_a_shared_peers_file_reloads_on_sighup_and_says_each_reload_once(lab: Lab,
                                                                                       tmp_path: Path) -> None:
    """One peers file for both nodes, each listed in it: each counts the other. A broken file on SIGHUP is
    told once, the old peers kept; a mended one is reloaded; traffic flows through all of it."""
    keys = {role: encode_public_key(generate_key_file(tmp_path / f"{role}.key")) for role in ("local", "peer")}
    peers = tmp_path / "peers.toml"
    shared = "[peers]\n" + "".join(f'"{lab.address(role)}" = "{key}"\n' for role, key in keys.items())
    peers.write_text(shared)
    agents = {role: lab.spawn_agent(role, "--key-file", str(tmp_path / f"{role}.key"), "--peers", str(peers),
                                    "--wakeup", "poll")
              for role in ("local", "peer")}
    local = agents["local"]
    assert "sealed, 1 peer, wakes by polling its inbox" in lab.agent_log(local).splitlines()[0]
    peers.write_text("[peers]\nnot toml at all = = =\n")
    local.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "peers file not reloaded, the old peers stay" in lab.agent_log(local), 10)
    peers.write_text(shared)
    local.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "peers file reloaded: 1 peer" in lab.agent_log(local), 10)
    assert lab.agent_log(local).count("peers file not reloaded") == 1, lab.agent_log(local)
    result = run_in(lab.namespaces["local"].name, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "5",
                    str(lab.peer_address), timeout=60)
    assert "3 packets transmitted, 3 received" in result.stdout, result.stdout + lab.agent_log(local)
    assert local.poll() is None
    for agent in agents.values():
        agent.send_signal(signal.SIGTERM)
        stopped_cleanly(lab, agent)
