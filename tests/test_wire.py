"""Object keys sort in send order; bodies round-trip; bad bodies are refused clearly."""

import ipaddress

import pytest
from packets_factory import A, B, echo_request, tcp_syn, udp

from agent import wire


def test_key_layout_and_parse():
    maker = wire.KeyMaker("net1/")
    key = maker.make(B)
    assert key.startswith("net1/fd5e:59b8:f71d:9a3e::b/")
    parsed = wire.parse_key(key, "net1/")
    assert parsed.destination == B
    assert len(str(parsed.ulid)) == 26


def test_keys_sort_in_send_order_within_one_millisecond():
    maker = wire.KeyMaker()
    keys = [maker.make(B) for _ in range(5000)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_inbox_slash_keeps_neighbours_apart():
    a = wire.inbox("", ipaddress.IPv6Address("fd5e::a"))
    a1 = wire.inbox("", ipaddress.IPv6Address("fd5e::a1"))
    assert not a1.startswith(a)


@pytest.mark.parametrize("key", ["no-slash", "not-an-address/01ARZ3NDEKTSV4RRFFQ69G5FAV", f"{A}/not-a-ulid"])
def test_bad_keys_are_refused(key):
    with pytest.raises(wire.WireError):
        wire.parse_key(key)


def test_one_packet_is_stored_raw():
    packet = echo_request()
    body = wire.encode([packet])
    assert body == packet
    assert body[0] >> 4 == 6  # xxd on the object shows the IPv6 header
    assert wire.body_format(body) == "raw-ipv6"
    assert wire.decode(body) == [packet]


def test_bundle_round_trips_in_order():
    packets = [echo_request(), tcp_syn(), udp()]
    body = wire.encode(packets)
    assert wire.body_format(body) == "bundle-v1"
    assert wire.decode(body) == packets


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00garbage", wire.BUNDLE_MAGIC, wire.BUNDLE_MAGIC + b"\x00\x00\x00\x50abc", wire.BUNDLE_MAGIC + b"\x00"],
)
def test_bad_bodies_are_refused(body):
    with pytest.raises(wire.WireError):
        wire.decode(body)
