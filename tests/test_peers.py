"""The peers file: valid files load; every mistake is refused with the peer, its line and the fix."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from packets_factory import A, B

from agent.sealing import Peers, PeersError, encode_public_key, key_id, load_peers, parse_peers

KEY1, KEY2, KEY3 = (encode_public_key(X25519PrivateKey.generate().public_key()) for _ in range(3))
# Curve25519's point of order 8 (a low-order point): valid base64 of 32 bytes, yet every secret with it is zero.
LOW_ORDER = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="


def test_a_key_or_a_list_of_keys_per_peer():
    table = parse_peers(f'''
# the office and the lab
[peers]
"fd5e:59b8:f71d:9a3e::a" = "{KEY1}"
"fd5e:59b8:f71d:9a3e:0:0:0:b" = ["{KEY2}", "{KEY3}"]  # rotating: both valid
''')
    assert set(table) == {A, B}
    assert [encode_public_key(k.public) for k in table.keys_of(A)] == [KEY1]
    assert [encode_public_key(k.public) for k in table.keys_of(B)] == [KEY2, KEY3]
    new = table.keys_of(B)[1]
    assert table.find(B, key_id(new.public)) == new
    assert table.find(A, key_id(new.public)) is None
    assert table.keys_of(ipaddress.IPv6Address("fd5e::99")) == ()


def test_an_empty_table_is_no_peers():
    assert len(parse_peers("[peers]\n")) == 0


@pytest.mark.parametrize(("text", "expected"), [
    ('[peers\n', r"not valid TOML: .*line 1"),
    ('title = "x"\n[peers]\n', r"unknown key or table 'title'"),
    ('[peer]\n"fd5e::a" = "x"\n', r"unknown key or table 'peer'.*\[peers\]"),
    ('', r"no \[peers\] table: add one"),
    ('peers = "x"\n', r"'peers' must be a table"),
    (f'[peers]\n"fd5e::a" = "{KEY1}"\n"fd5e::zz" = "{KEY2}"\n',
     r"file:3: peer 'fd5e::zz': not an IPv6 address; write the node's address"),
    (f'[peers]\n"fd5e::a" = "{KEY1}"\n"FD5E:0::A" = "{KEY2}"\n',
     r"file:3: peer 'FD5E:0::A': the same address as 'fd5e::a': list each peer once"),
    ('[peers]\n"fd5e::a" = 7\n', r"file:2: peer 'fd5e::a': give a public key, or a list of keys"),
    ('[peers]\n"fd5e::a" = []\n', r"give a public key, or a list"),
    ('[peers]\n"fd5e::a" = { key = "x" }\n', r"give a public key, or a list"),
    ('[peers]\n"fd5e::a" = "not base64!"\n',
     r"file:2: peer 'fd5e::a': key 'not base64!' is not base64: paste the line"),
    ('[peers]\n"fd5e::a" = "AAAA"\n', r"holds 3 bytes, not 32"),
    (f'[peers]\n"fd5e::a" = "{LOW_ORDER}"\n', r"low-order point"),
    (f'[peers]\n"fd5e::a" = ["{KEY1}", "{KEY1}"]\n', r"is listed twice"),
    (f'[peers]\n"fd5e::a" = "{KEY1}"\n\n"fd5e::b" = "{KEY1}"\n',
     r"file:4: peer 'fd5e::b': key .* is listed for 'fd5e::a' too: each node has keys of its own"),
])
def test_mistakes_are_refused_naming_place_and_fix(text: str, expected: str):
    with pytest.raises(PeersError, match=expected):
        parse_peers(text, "file")


def test_a_missing_file_says_what_to_write(tmp_path: Path):
    with pytest.raises(PeersError, match=r"does not exist: write a peers file, e\.g\.\n\[peers\]"):
        load_peers(tmp_path / "peers.toml")


def test_reload_swaps_the_whole_table_or_nothing(tmp_path: Path):
    path = tmp_path / "peers.toml"
    path.write_text(f'[peers]\n"{A}" = "{KEY1}"\n')
    peers = Peers(path)
    first = peers.table
    path.write_text(f'[peers]\n"{A}" = "{KEY1}"\n"{B}" = "{KEY2}"\n')
    assert set(peers.reload()) == {A, B}
    assert set(peers.table) == {A, B}
    assert set(first) == {A}  # a table taken before the reload is unchanged
    second = peers.table
    path.write_text(f'[peers]\n"{A}" = "{KEY1}"\n"{B}" = "oops"\n')
    with pytest.raises(PeersError, match=":3: peer"):
        peers.reload()
    assert peers.table is second
    path.unlink()
    with pytest.raises(PeersError, match="does not exist"):
        peers.reload()
    assert peers.table is second
