"""A hostile bucket: whatever bytes an object holds, decoding fails only with the errors the loops count."""

from hypothesis import given, settings
from hypothesis import strategies as st
from packets_factory import echo_request, tcp_syn, udp

from agent import packets, wire


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_packet_or_a_packet_error(data):
    try:
        packet = packets.parse(data)
    except packets.PacketError as error:
        assert error.args[0] in ("not_ipv6", "malformed")
    else:
        assert packet.length == len(data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([echo_request(), tcp_syn(), udp()]), st.integers(0, 59), st.integers(0, 255))
def test_corrupted_real_packets_never_escape_as_other_errors(packet, position, value):
    data = bytearray(packet)
    data[position % len(data)] = value
    try:
        parsed = packets.parse(bytes(data))
    except packets.PacketError as error:
        assert error.args[0] in ("not_ipv6", "malformed")
    else:
        assert parsed.summary and parsed.length == len(packet)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512).map(lambda tail: wire.BUNDLE_MAGIC + tail) | st.binary(max_size=512))
def test_any_body_is_packets_or_a_wire_error(body):
    try:
        decoded = wire.decode(body)
    except wire.WireError:
        return
    assert decoded and all(decoded)
