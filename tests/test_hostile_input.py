"""A hostile bucket: whatever bytes an object holds, every decoder fails only with the errors the loops
count, and in time linear in the input (a few milliseconds for 64 KiB)."""

import json
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from packets_factory import echo_request, tcp_syn, udp

from agent import packets, wire
from agent.dissect import dissect
from agent.transport.bell_format import decode_bells

EXAMPLE_LIMIT = 0.01
"""Seconds one example may take; a parse quadratic in its input takes seconds at 64 KiB. The best
of a few runs counts, so a busy machine's pause is not taken for the parser's cost."""
LARGE = 65536

# Big inputs cheaply: a chosen head, then a short pattern repeated up to 64 KiB. The pattern of
# the known attack (0x60 then zeros: a chain of empty extension headers) is one of them.
hostile_bodies = st.builds(
    lambda head, fill, size: (head + fill * (size // max(1, len(fill)) + 1))[:size],
    st.binary(max_size=64), st.binary(min_size=1, max_size=8), st.integers(0, LARGE),
)
real_packets = st.sampled_from([echo_request(), tcp_syn(), udp(payload=b"x" * 3000)])


def timed(call, *args):
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        result = call(*args)
        best = min(best, time.perf_counter() - started)
        if best < EXAMPLE_LIMIT:
            return result
    raise AssertionError(f"{call.__name__} took {best * 1000:.1f} ms on {len(args[0])} bytes")


def header_or_error(data: bytes) -> packets.Header | str:
    try:
        return packets.parse_header(data)
    except packets.PacketError as error:
        assert error.args[0] in ("not_ip", "malformed", "bad_checksum")
        return error.args[0]


def packets_or_error(body: bytes) -> wire.Decoded | str:
    try:
        decoded = wire.decode(body)
    except wire.WireError as error:
        assert error.reason in ("bad_object", "too_many_packets", "sealed_no_key")
        return error.reason
    assert decoded.packets and all(decoded.packets)
    return decoded


@settings(max_examples=300, deadline=None)
@given(hostile_bodies)
def test_any_bytes_are_a_header_or_a_packet_error_in_constant_time(data):
    header = timed(header_or_error, data)
    if isinstance(header, packets.Header):
        assert header.length == len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=LARGE).map(lambda tail: wire.BUNDLE_MAGIC + tail) | hostile_bodies)
def test_any_body_is_packets_or_a_wire_error_in_linear_time(body):
    timed(packets_or_error, body)


@settings(max_examples=300, deadline=None)
@given(hostile_bodies.map(lambda tail: b"\x60" + tail))
@example(data=b"`\x00\x00\x00`\x00\x06\x00" + b"\x00\x00`\x00\x06\x00\x00\x00`\x00\x06\x00" * 4 + b"\x00\x00`\x00")
def test_the_decoder_never_raises_and_stays_linear(data):
    decoded = timed(dissect, data)
    assert decoded.layers and decoded.summary
    for layer in decoded.layers:
        assert layer.offset >= 0 and layer.offset + layer.length <= len(data)


@settings(max_examples=300, deadline=None)
@given(real_packets, st.integers(0, 59), st.integers(0, 255))
def test_corrupted_real_packets_never_escape_as_other_errors(packet, position, value):
    data = bytearray(packet)
    data[position % len(data)] = value
    header = header_or_error(bytes(data))
    if isinstance(header, packets.Header):
        assert header.length == len(packet)
    assert dissect(bytes(data)).summary


def test_the_extension_header_chain_that_froze_a_node_is_linear():
    """0x60 then zeros: dpkt took 4.19 s for 1 MiB (quadratic). The tunnel reads 40 bytes of it;
    the decoder, which a person's inspector runs, reads at most MAX_EXTENSIONS headers."""
    for size in (256 << 10, 1 << 20, 2 << 20):
        body = b"\x60" + bytes(size - 1)
        started = time.perf_counter()
        assert header_or_error(body) == "malformed"  # its payload length (0) is not its size
        assert packets_or_error(body).packets == [body]  # a raw packet: the header check refuses it
        decoded = dissect(body)
        elapsed = time.perf_counter() - started
        assert any("extension headers" in problem for problem in decoded.problems)
        print(f"{size >> 10} KiB of 0x60 + zeros: {elapsed * 1000:.1f} ms")
        assert elapsed < 0.5


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")))
def test_any_key_is_an_object_key_or_a_bad_key_in_constant_time(key):
    try:
        parsed = timed(wire.parse_key, key)
    except wire.WireError as error:
        assert error.reason == "bad_key"
    else:
        assert key.endswith(str(parsed.ulid))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=4096) | st.builds(
    lambda entries: json.dumps({"v": 1, "bells": entries}),
    st.lists(st.lists(st.one_of(st.text(max_size=80), st.integers(), st.booleans(), st.none()), max_size=3),
             max_size=50)))
def test_any_doorbell_message_is_bells_or_refused(text):
    try:
        bells = timed(decode_bells, text)
    except ValueError:
        return
    assert all(isinstance(bell.key, str) and isinstance(bell.size, int) for bell in bells)


def test_a_doorbell_message_nested_too_deep_is_refused_not_raised():
    for text in ("[" * 100_000, '{"v": 1, "bells": ' + "[" * 50_000, "x" * (1 << 20)):
        with pytest.raises(ValueError):
            decode_bells(text)
