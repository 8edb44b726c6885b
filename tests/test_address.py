"""The node address: network prefix + the first 64 bits of the machine-id."""

import ipaddress

import pytest

from agent.address import AddressError, node_address, read_machine_id
from agent.config import DEFAULT_NETWORK


def test_address_is_prefix_plus_first_half_of_machine_id(tmp_path):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("c05f7f48de53428f0123456789abcdef\n")
    address = node_address(ipaddress.IPv6Network(DEFAULT_NETWORK), read_machine_id(machine_id))
    # The address from the original experiment's ping.
    assert address == ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e:c05f:7f48:de53:428f")


def test_other_network_keeps_interface_identifier():
    address = node_address(ipaddress.IPv6Network("fd00:1::/64"), "59e55085744d4a66" + "0" * 16)
    assert address == ipaddress.IPv6Address("fd00:1::59e5:5085:744d:4a66")


@pytest.mark.parametrize("content", ["", "not-hex-at-all", "c05f7f48de53428f"])
def test_bad_machine_id_names_the_fix(tmp_path, content):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text(content)
    with pytest.raises(AddressError, match="--address"):
        read_machine_id(machine_id)


def test_missing_machine_id_names_the_fix(tmp_path):
    with pytest.raises(AddressError, match=r"cannot read machine-id .*pass --address"):
        read_machine_id(tmp_path / "absent")
