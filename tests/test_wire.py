"""Object keys sort in send order; bodies round-trip; bad bodies are refused clearly."""

import ipaddress
import itertools

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


def test_only_the_canonical_spelling_of_a_key_is_one():
    key = wire.KeyMaker("net1/").make(B)
    inbox, stamp = key.rsplit("/", 1)
    assert stamp.isupper() and len(stamp) == 26  # python-ulid's Crockford base32
    for other in (f"{inbox}/{stamp.lower()}", f"{inbox}/{stamp[:5].lower()}{stamp[5:]}",
                  key.replace(B.compressed, B.exploded), key.replace("fd5e", "FD5E")):
        with pytest.raises(wire.WireError, match=f"not in canonical form: {key}$") as refused:
            wire.parse_key(other, "net1/")
        assert refused.value.reason == "bad_key"


def test_one_packet_is_stored_raw():
    packet = echo_request()
    body = wire.encode([packet])
    assert body == packet
    assert body[0] >> 4 == 6  # xxd on the object shows the IPv6 header
    assert wire.body_format(body) == "raw-ipv6"
    assert wire.decode(body).packets == [packet]


def test_bundle_round_trips_in_order():
    packets = [echo_request(), tcp_syn(), udp()]
    body = wire.encode(packets)
    assert wire.body_format(body) == "bundle-v1"
    assert wire.decode(body).packets == packets


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00garbage", wire.BUNDLE_MAGIC, wire.BUNDLE_MAGIC + b"\x00\x00\x00\x50abc", wire.BUNDLE_MAGIC + b"\x00"],
)
def test_bad_bodies_are_refused(body):
    with pytest.raises(wire.WireError):
        wire.decode(body)


def test_a_bundle_holds_a_bounded_number_of_packets():
    tiny = udp(A, B, b"")
    with pytest.raises(wire.WireError):
        wire.encode([tiny] * (wire.MAX_BUNDLE_PACKETS + 1))
    full = wire.encode([tiny] * wire.MAX_BUNDLE_PACKETS)
    assert len(wire.decode(full).packets) == wire.MAX_BUNDLE_PACKETS
    # A hostile writer's bundle of many tiny packets is refused whole, after reading only its bound.
    flood = full + wire._LENGTH.pack(len(tiny)) + tiny
    with pytest.raises(wire.WireError) as refused:
        wire.decode(flood)
    assert refused.value.reason == "too_many_packets"


def test_a_sealed_body_needs_a_key_and_is_opened_by_the_one_decode_entry():
    sealed = wire.SEALED_MAGIC + b"ciphertext"
    assert wire.body_format(sealed) == "sealed-v1"
    with pytest.raises(wire.WireError) as refused:
        wire.decode(sealed, "k")
    assert refused.value.reason == "sealed_no_key"
    inner = wire.encode([echo_request(), udp()])
    opened = wire.decode(sealed, "k", opener=lambda key, body: (A, inner))
    assert opened.format == "sealed-v1/bundle-v1"
    assert opened.sender == A and opened.packets == [echo_request(), udp()]


def test_ulid_floor_sorts_before_every_key_made_at_or_after_that_moment():
    maker = wire.KeyMaker()
    key = maker.make(B)
    made = wire.parse_key(key).timestamp
    inbox = wire.inbox("", B)
    assert f"{inbox}{wire.ulid_floor(made)}" <= key
    assert f"{inbox}{wire.ulid_floor(made + 0.002)}" > key


def test_an_ipv4_packet_always_travels_in_a_bundle():
    from packets_factory import udp4

    alone = udp4()
    body = wire.encode([alone])
    assert wire.body_format(body) == "bundle-v1"
    assert wire.decode(body).packets == [alone]


def test_keys_stay_strictly_increasing_when_the_clock_steps_back_or_stands_still():
    now = [1_800_000_000.0]
    maker = wire.KeyMaker(clock=lambda: now[0])
    keys = []
    for step in (0.0, -5.0, 0.0, 0.0005, -0.001, 3.0, -60.0):
        now[0] += step
        keys += [maker.make(B) for _ in range(100)]
    assert all(earlier < later for earlier, later in itertools.pairwise(keys))
