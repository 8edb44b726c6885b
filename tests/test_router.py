"""The routing table: the peers file's table form, longest prefix match, and who may send what."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from packets_factory import A4, B4, A, B, udp, udp4

from agent import ip, packets
from agent.config import DEFAULT_NETWORK
from agent.router import Prefixes, Route, RouteError, Router, RouterSettings
from agent.sealing import PeersError, encode_public_key, parse_peers

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
KEY1, KEY2, KEY3, KEY4 = (encode_public_key(X25519PrivateKey.generate().public_key()) for _ in range(4))
C = NETWORK.network_address + 0xC
EXIT = NETWORK.network_address + 0xE
LAN = ipaddress.IPv4Network("192.0.2.0/24")
INTERNET4 = ipaddress.IPv4Address("198.51.100.1")
INTERNET6 = ipaddress.IPv6Address("2001:db8:100::1")

PEERS = f'''
[peers]
"{B}" = "{KEY1}"

[peers."{C}"]
keys = ["{KEY2}"]
routes = ["192.0.2.0/24", "2001:db8:c::/48"]
name = "office"

[peers."{EXIT}"]
keys = ["{KEY3}"]
routes = ["0.0.0.0/0", "::/0"]
address4 = "100.100.0.1"
'''


def router(**settings: object) -> Router:
    table = parse_peers(PEERS)
    return Router(RouterSettings(A, NETWORK, **settings), lambda: table)  # type: ignore[arg-type]


def test_the_table_form_and_the_one_line_form_load_together():
    routing = parse_peers(PEERS).routing()
    assert routing[B].address4 == ip.derived_ipv4(B) == B4
    assert routing[B].routes == ()
    assert routing[C].routes == (LAN, ipaddress.IPv6Network("2001:db8:c::/48"))
    assert routing[C].name == "office"
    assert routing[EXIT].address4 == ipaddress.IPv4Address("100.100.0.1")
    assert [k.raw for k in parse_peers(PEERS).keys_of(C)] == [k.raw for k in parse_peers(
        f'[peers]\n"{C}" = "{KEY2}"\n').keys_of(C)]


@pytest.mark.parametrize(("text", "expected"), [
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\n[peers."{C}"]\nkeys = ["{KEY2}"]\naddress4 = "{B4}"\n',
     rf"file:3: peer '{C}': IPv4 address {B4} belongs to peer '{B}' too"),
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\naddress4 = "10.0.0.1"\n', r"address4: 10.0.0.1 is outside 100.64.0.0/10"),
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\nroutes = ["192.0.2.1/24"]\n', r"did you mean 192.0.2.0/24"),
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\nroutes = "192.0.2.0/24"\n', r"routes must be a list"),
    (f'[peers."{B}"]\nroutes = []\n', r"file:1: peer '.*': no keys"),
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\nroute = []\n', r"unknown field 'route'"),
    (f'[peers."{B}"]\nkeys = ["{KEY1}"]\nroutes = ["{LAN}"]\n[peers."{C}"]\nkeys = ["{KEY2}"]\nroutes = ["{LAN}"]\n',
     rf"route {LAN} is carried by peer '{B}' too"),
])
def test_table_form_mistakes_are_refused(text: str, expected: str):
    with pytest.raises(PeersError, match=expected):
        parse_peers(text, "file")


def test_two_exit_nodes_may_be_listed():
    text = (f'[peers."{B}"]\nkeys = ["{KEY1}"]\nroutes = ["0.0.0.0/0", "::/0"]\n'
            f'[peers."{C}"]\nkeys = ["{KEY2}"]\nroutes = ["0.0.0.0/0", "::/0"]\n')
    assert len(parse_peers(text)) == 2


def test_longest_prefix_wins_in_each_family():
    table = Prefixes([(ipaddress.ip_network("0.0.0.0/0"), "default"), (LAN, "lan"),
                      (ipaddress.ip_network("192.0.2.128/25"), "half"), (NETWORK, "network")])
    assert table.lookup(ipaddress.IPv4Address("192.0.2.1")) == "lan"
    assert table.lookup(ipaddress.IPv4Address("192.0.2.200")) == "half"
    assert table.lookup(INTERNET4) == "default"
    assert table.lookup(B) == "network"
    assert table.lookup(INTERNET6) is None


def test_next_hops_follow_the_flags():
    plain = router()
    assert plain.next_hop(B) == B
    assert plain.next_hop(B4) == B
    assert plain.next_hop(ipaddress.IPv4Address("100.100.0.1")) == EXIT
    assert plain.next_hop(ipaddress.IPv4Address("192.0.2.7")) is None  # not without --accept-routes
    assert plain.next_hop(INTERNET4) is None  # not without --exit-node
    accepting = router(accept_routes=True, exit_node=EXIT)
    assert accepting.next_hop(ipaddress.IPv4Address("192.0.2.7")) == C
    assert accepting.next_hop(ipaddress.IPv6Address("2001:db8:c::7")) == C
    assert accepting.next_hop(INTERNET4) == EXIT
    assert accepting.next_hop(INTERNET6) == EXIT
    assert (ip.DEFAULT_ROUTES[0], EXIT) in accepting.routes()


def test_ingress_takes_a_peer_s_routes_as_sources_and_refuses_others():
    table = parse_peers(f'[peers]\n"{A}" = "{KEY4}"\n"{B}" = "{KEY1}"\n')  # the exit node's own peers file
    exit_router = Router(RouterSettings(EXIT, NETWORK, ipaddress.IPv4Address("100.100.0.1"),
                                        ip.DEFAULT_ROUTES), lambda: table)
    to_internet = packets.parse_header(udp4(A4, INTERNET4))
    assert packets.ingress_verdict(to_internet, exit_router, 9000, sender=A) == ""
    spoofed = packets.parse_header(udp4(ipaddress.IPv4Address("100.64.0.99"), INTERNET4))
    assert packets.ingress_verdict(spoofed, exit_router, 9000, sender=B) == "spoofed_source"
    from_lan = packets.parse_header(udp4(ipaddress.IPv4Address("192.0.2.7"), A4))
    assert packets.ingress_verdict(from_lan, router(), 9000, sender=C) == ""
    assert packets.ingress_verdict(from_lan, router(), 9000, sender=B) == "spoofed_source"
    from_internet = packets.parse_header(udp(INTERNET6, A))
    assert packets.ingress_verdict(from_internet, router(), 9000, sender=EXIT) == ""
    assert packets.ingress_verdict(from_internet, router(), 9000, sender=B) == "spoofed_source"
    to_elsewhere = packets.parse_header(udp(A, INTERNET6))
    assert packets.ingress_verdict(to_elsewhere, router(), 9000, sender=B) == "not_routed_here"


def test_a_node_that_carries_a_lan_sends_from_it():
    carrying = router(advertised=(LAN,))
    reply = packets.parse_header(udp4(ipaddress.IPv4Address("192.0.2.7"), B4))
    assert packets.egress_verdict(reply, carrying) == ("", Route("100.64.0.0/10", B))
    assert packets.egress_verdict(reply, router()) == ("foreign_source", None)


def test_routing_beyond_own_addresses_needs_a_peers_file():
    for settings in ({"advertised": (LAN,)}, {"accept_routes": True}, {"exit_node": EXIT}):
        with pytest.raises(RouteError, match="needs sealing"):
            Router(RouterSettings(A, NETWORK, **settings))  # type: ignore[arg-type]


def test_an_exit_node_must_be_listed_with_default_routes():
    with pytest.raises(RouteError, match=r'--exit-node .*::c: the peers file must list it with routes'):
        router(exit_node=C)


def test_a_peer_on_this_node_s_ipv4_address_is_refused():
    with pytest.raises(RouteError, match="has this node's IPv4 address"):
        router(address4=B4)


def test_a_reload_that_cannot_be_routed_keeps_the_old_table():
    tables = [parse_peers(PEERS)]
    exit_router = Router(RouterSettings(A, NETWORK, exit_node=EXIT), lambda: tables[-1])
    tables.append(parse_peers(f'[peers."{B}"]\nkeys = ["{KEY1}"]\naddress4 = "{A4}"\n'))
    assert exit_router.next_hop(INTERNET4) == EXIT
    assert "has this node's IPv4 address" in exit_router.problem


def test_a_reload_without_the_exit_node_drops_the_default_routes_and_one_with_it_brings_them_back():
    tables = [parse_peers(PEERS)]
    exit_router = Router(RouterSettings(A, NETWORK, exit_node=EXIT), lambda: tables[-1])
    assert exit_router.exit_hop() == EXIT
    tables.append(parse_peers(f'[peers]\n"{B}" = "{KEY1}"\n'))  # the exit peer removed
    assert (exit_router.next_hop(INTERNET4), exit_router.next_hop(INTERNET6), exit_router.exit_hop()) == (
        None, None, None)
    assert exit_router.problem == ""
    assert exit_router.next_hop(B) == B
    tables.append(parse_peers(f'[peers]\n"{EXIT}" = "{KEY3}"\n'))  # listed, but carrying no default route
    assert exit_router.exit_hop() is None
    tables.append(parse_peers(PEERS))
    assert exit_router.exit_hop() == exit_router.next_hop(INTERNET6) == EXIT


def test_an_exit_node_named_in_the_peers_file_moves_with_its_name():
    def exits(named: ipaddress.IPv6Address) -> str:
        return "".join(f'[peers."{address}"]\nkeys = ["{key}"]\nroutes = ["0.0.0.0/0", "::/0"]\n'
                       f'{"name = " + chr(34) + "exit" + chr(34) if address == named else ""}\n'
                       for address, key in ((C, KEY2), (EXIT, KEY3)))

    tables = [parse_peers(exits(EXIT))]
    exit_router = Router(RouterSettings(A, NETWORK, exit_node="exit"), lambda: tables[-1])
    assert exit_router.next_hop(INTERNET4) == EXIT
    tables.append(parse_peers(exits(C)))
    assert exit_router.next_hop(INTERNET4) == exit_router.next_hop(INTERNET6) == exit_router.exit_hop() == C
    assert exit_router.label_in(INTERNET4, A4) == "0.0.0.0/0"
    with pytest.raises(RouteError, match='must list a peer with name = "elsewhere" with routes'):
        Router(RouterSettings(A, NETWORK, exit_node="elsewhere"), lambda: tables[-1])
    twice = exits(C).replace('routes = ["0.0.0.0/0", "::/0"]\n\n', 'routes = ["0.0.0.0/0", "::/0"]\nname = "exit"\n')
    with pytest.raises(RouteError, match=r"--exit-node exit: 2 peers have this name"):
        Router(RouterSettings(A, NETWORK, exit_node="exit"), lambda: parse_peers(twice))
    tables.append(parse_peers(twice))  # on a reload: the old table stays, and says why
    assert exit_router.next_hop(INTERNET4) == C
    assert "2 peers have this name" in exit_router.problem


def test_routes_are_labelled_by_prefix_for_the_counters():
    accepting = router(accept_routes=True, exit_node=EXIT)
    assert accepting.route(ipaddress.IPv4Address("192.0.2.7")) == Route(str(LAN), C)
    assert accepting.route(INTERNET6) == Route("::/0", EXIT)
    assert accepting.route(B) == Route(str(NETWORK), B)
    assert accepting.label_in(INTERNET4, A4) == "0.0.0.0/0"  # a reply from the internet, through the exit
    assert accepting.label_in(B, A) == str(NETWORK)
    exit_router = Router(RouterSettings(EXIT, NETWORK, advertised=ip.DEFAULT_ROUTES), lambda: parse_peers(
        f'[peers]\n"{A}" = "{KEY4}"\n'))
    assert exit_router.label_in(A4, INTERNET4) == "0.0.0.0/0"  # a peer's packet for the internet
