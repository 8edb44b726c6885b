"""The cost pane of a node that routes: bytes through an exit node priced as a NAT gateway would, and the routes."""

from __future__ import annotations

import dataclasses

import pytest
from rich.console import Console

from agent.events import StatsSampled
from hoshino_tui.sampler import StatsModel
from hoshino_tui.widgets.cost_pane import cost_table, routes_text

EXIT = "fd5e:59b8:f71d:9a3e::e"


def sample(**fields: object) -> StatsSampled:
    base = StatsSampled(time=1.0, state="running", interval=0.5, manual=False, packets_out=0, bytes_out=0,
                        packets_in=0, bytes_in=0, s3_ops={}, s3_errors={}, s3_latency={}, dropped={}, ignored={},
                        missed_beats=0, events_dropped=0, waiting_egress=0)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def rendered(renderable: object) -> str:
    console = Console(width=80, record=True)
    console.print(renderable)
    return console.export_text()


def test_bytes_through_an_exit_node_and_the_routes_are_shown():
    model = StatsModel()
    model.add(sample(routes={"0.0.0.0/0": (EXIT, 2_000_000, 20_000_000), "::/0": (EXIT, 0, 0),
                             "fd5e:59b8:f71d:9a3e::/64": ("each node", 500, 700)},
                     exit_nat_dollars=0.045 * 0.022, bytes_out=2_000_500, bytes_in=20_000_700,
                     dollars={"s3.put": 0.01}, nat_dollars=0.01))
    view = model.view()
    assert view is not None
    assert view.cost.exit_bytes == 22_000_000
    assert view.cost.exit_nat == pytest.approx(0.00099)
    table = rendered(cost_table(view.cost))
    assert "via exit 22 MB" in table
    routes = rendered(routes_text(view.cost))
    assert f"0.0.0.0/0 -> {EXIT} ↑2 MB ↓20 MB" in routes
    assert "each node" not in routes  # the network's own route is every node's: not a route to show


def test_a_node_that_does_not_route_shows_no_routes():
    model = StatsModel()
    model.add(sample(routes={"fd5e:59b8:f71d:9a3e::/64": ("each node", 500, 700)}))
    view = model.view()
    assert view is not None
    assert view.cost.exit_bytes == 0
    assert "via exit" not in rendered(cost_table(view.cost))
    assert not routes_text(view.cost)


def test_a_node_s_snapshot_counts_each_route_and_prices_its_exit_traffic():
    import ipaddress

    from agent.config import Config
    from agent.node import Node

    node = Node(Config(bucket="b", address=ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::a"), metrics_listen=None))
    node.stats.routed("out", "0.0.0.0/0", 1_000_000)
    node.stats.routed("in", "0.0.0.0/0", 9_000_000)
    node.stats.routed("out", "fd5e:59b8:f71d:9a3e::/64", 100)
    snapshot = node.snapshot()
    assert snapshot.routes["0.0.0.0/0"] == ("this node", 1_000_000, 9_000_000)
    assert snapshot.routes["fd5e:59b8:f71d:9a3e::/64"] == ("each node", 100, 0)
    assert snapshot.exit_nat_dollars == pytest.approx(0.045 * 10_000_000 / (1 << 30))  # the price table's GB: GiB
