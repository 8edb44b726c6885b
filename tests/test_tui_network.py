"""The network screen on the lab's three nodes (agent.lab.network: one silent): snapshots at 80x24 and 160x45,
its keys, a page that does not answer, a read that hangs without holding up the screen, and its figures."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pilot_helpers import wait_for
from recorded_app import replayed_app, settle
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from agent.lab.network import ADDRESSES, NOW, LabPages, page
from agent.prices import load_prices
from agent.scrape import NodeReport, ScrapeError, parse, peer_url
from agent.status import probe_peers
from hoshino_tui.app import HoshinoApp
from hoshino_tui.messages import NetworkRead
from hoshino_tui.network import NetworkHistory, NetworkSource, build
from hoshino_tui.screens.dashboard import DashboardScreen
from hoshino_tui.screens.network import NetworkScreen

SIZES = [(80, 24), (160, 45)]


def lab_source(get: Any = None) -> NetworkSource:
    pages = LabPages()
    return NetworkSource(pages.local_url, get=get or pages, clock=lambda: NOW)


def network_app(source: NetworkSource | None = None) -> HoshinoApp:
    """The replayed dashboard, its network screen reading the lab's pages on the lab's clock."""
    app, _ = replayed_app()
    app.network = source or lab_source()
    return app


async def open_network(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NetworkScreen) and pilot.app.screen.readings > 0)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_network_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(network_app(), terminal_size=size, run_before=open_network)


def test_the_view_adds_up_the_three_nodes():
    pages = LabPages()
    local = parse(page("local"), pages.local_url, NOW)
    view = build(local, probe_peers(local, get=pages, clock=lambda: NOW), load_prices("aws-s3-standard"),
                 NetworkHistory())
    assert (view.nodes, view.answering, [line.name for line in view.silent]) == (3, 2, ["third"])
    assert view.name == "this node" and view.name_of(ADDRESSES["peer"].compressed) == "peer"
    local_address, peer, third = (ADDRESSES[role].compressed for role in ("local", "peer", "third"))
    pairs = {(pair.sender, pair.receiver): pair.bytes for pair in view.pairs}
    # Each pair as its sender counts it; the silent node's own sends are not known.
    assert pairs == {(local_address, peer): 41_000 * 1_180, (local_address, third): 1_200 * 84,
                     (peer, local_address): 22_500 * 96, (peer, third): 300 * 84}
    assert view.nat_per_node == pytest.approx(24 * 0.045)
    assert view.nat_per_day > 3 * view.nat_per_node and 0 < view.dollars_per_day < view.nat_per_day
    # one subnet routed (the peer's 192.0.2.0/24): one gateway for it would carry the same bytes
    assert view.subnets == 1
    assert view.nat_per_subnet_day == pytest.approx(view.nat_per_day - 2 * view.nat_per_node)


def test_a_silent_peer_is_asked_again_only_after_a_rest():
    """Each try of a page that does not answer puts a connection's packets into an inbox nobody may read."""
    pages = LabPages()
    asked: list[str] = []

    def counting(url: str, timeout: float) -> str:
        asked.append(url)
        return pages(url, timeout)

    source = NetworkSource(pages.local_url, get=counting, clock=lambda: NOW)
    third = peer_url(ADDRESSES["third"].compressed)
    for _ in range(3):
        _, probed = source.read()
        assert isinstance(probed[ADDRESSES["third"].compressed], ScrapeError)  # still shown as silent
        assert isinstance(probed[ADDRESSES["peer"].compressed], NodeReport)
    assert asked.count(third) == 1 and asked.count(peer_url(ADDRESSES["peer"].compressed)) == 3
    source.silent.clear()  # what r does
    source.read()
    assert asked.count(third) == 2


async def test_r_reads_again_and_escape_goes_back():
    app = network_app()
    messages: list[NetworkRead] = []
    async with app.run_test(size=(120, 40), message_hook=lambda message: isinstance(message, NetworkRead)
                            and messages.append(message)) as pilot:
        await open_network(pilot)
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        assert screen.query_one("#network-nodes", DataTable).row_count == 3
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.readings == 2)
        read = {id(message): message for message in messages}  # the hook sees a message at each hop
        assert len(read) == 2 and all(not isinstance(message.local, ScrapeError) for message in read.values())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_a_local_page_that_does_not_answer_is_said_so():
    def nothing(url: str, timeout: float) -> str:
        raise ScrapeError("refused")

    app = network_app(lab_source(nothing))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_network(pilot)
        title = str(app.screen.query_one("#network-status", Static).render())
        assert "this node's metrics page at http://[::1]:8081/metrics does not answer (refused)" in title


async def test_a_hanging_read_never_holds_up_the_screen():
    release = threading.Event()
    pages = LabPages()

    def hangs(url: str, timeout: float) -> str:
        release.wait(30)
        return pages(url, timeout)

    app = network_app(lab_source(hangs))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NetworkScreen))
        screen = app.screen
        assert "reading the nodes' metrics pages" in str(screen.query_one("#network-status", Static).render())
        await pilot.press("escape")  # the read still hangs in its worker; the keys still work
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        release.set()
