"""A subnet router: a LAN namespace behind a node that advertises 192.0.2.0/24, reached from a node that
accepts routes, and not from one that does not; forwarding and routes undone on stop."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.lab import Lab, Namespace, run_in, wait_until
from agent.lab.links import address, default_route, veth
from agent.lab.peers_files import RoutingKeys
from agent.lab.traffic import fetch_metrics
from agent.netconf import inside

pytestmark = pytest.mark.root
LAN = "192.0.2.0/24"
HOST = "192.0.2.2"


def forwarding(namespace: str) -> str:
    return run_in(namespace, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def stop(lab: Lab, process) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, lab.agent_log(process)


def test_a_lan_behind_a_node_is_reached_by_a_node_that_accepts_routes(lab: Lab, tmp_path: Path):
    router_ns, client_ns = lab.namespaces["local"].name, lab.namespaces["peer"].name
    lan = Namespace("lan")
    try:
        veth(router_ns, "lan0", lan.name, "eth0")
        address(router_ns, "lan0", "192.0.2.1/24")
        address(lan.name, "eth0", f"{HOST}/24")
        default_route(lan.name, "192.0.2.1")
        keys = RoutingKeys(tmp_path, {"router": lab.address("local"), "client": lab.address("peer")})
        keys.write_peers("router", {"client": []})
        keys.write_peers("client", {"router": [LAN]})
        assert forwarding(router_ns) == "0"
        router = lab.spawn_agent("local", *keys.flags("router"), "--advertise-routes", LAN)
        assert forwarding(router_ns) == "1"

        refusing = lab.spawn_agent("peer", *keys.flags("client"))
        unreachable = run_in(client_ns, "ping", "-4", "-n", "-c", "1", "-W", "2", HOST, timeout=30)
        assert unreachable.returncode != 0
        stop(lab, refusing)

        accepting = lab.spawn_agent("peer", *keys.flags("client"), "--accept-routes")
        assert f"{LAN} dev hoshino0" in run_in(client_ns, "ip", "-4", "route").stdout
        result = run_in(client_ns, "ping", "-4", "-n", "-c", "5", "-i", "0.2", "-W", "5", HOST, timeout=60)
        assert result.returncode == 0, result.stdout + lab.agent_log(router) + lab.agent_log(accepting)
        assert "5 packets transmitted, 5 received" in result.stdout
        with inside(client_ns):
            page = fetch_metrics(lab.address("peer"))
        routes = [line for line in page.splitlines() if line.startswith("hoshino_route_packets_total")]
        assert f'hoshino_route_packets_total{{direction="out",route="{LAN}"}} 5.0' in routes, routes
        assert f'hoshino_route_packets_total{{direction="in",route="{LAN}"}} 5.0' in routes, routes

        # SIGHUP: the peers file no longer gives the router the LAN, then gives it again; the route follows.
        keys.write_peers("client", {"router": []})
        accepting.send_signal(signal.SIGHUP)
        assert wait_until(lambda: f"route {LAN} removed" in lab.agent_log(accepting), 20), lab.agent_log(accepting)
        assert LAN not in run_in(client_ns, "ip", "-4", "route").stdout
        keys.write_peers("client", {"router": [LAN]})
        accepting.send_signal(signal.SIGHUP)
        assert wait_until(lambda: f"route {LAN} added" in lab.agent_log(accepting), 20), lab.agent_log(accepting)
        assert f"{LAN} dev hoshino0" in run_in(client_ns, "ip", "-4", "route").stdout
        result = run_in(client_ns, "ping", "-4", "-n", "-c", "1", "-W", "5", HOST, timeout=60)
        assert result.returncode == 0, result.stdout

        stop(lab, accepting)
        assert LAN not in run_in(client_ns, "ip", "-4", "route").stdout
        stop(lab, router)
        assert forwarding(router_ns) == "0"
    finally:
        lan.close()
