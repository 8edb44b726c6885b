"""The peers file: valid files load; every mistake is refused with the peer, its line and the fix."""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from packets_factory import A, B

from agent.sealing import (
    KeyFileError,
    Peers,
    PeersError,
    encode_public_key,
    generate_key_file,
    key_id,
    load_peers,
    parse_peers,
)
from agent.sealing.keys import load_private_keys

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
    ('[peers]\n"fd5e::a" = { key = "x" }\n', r"file:2: peer 'fd5e::a': unknown field 'key': .*holds keys, routes"),
    ('[peers]\n"fd5e::a" = "not base64!"\n',
     r"file:2: peer 'fd5e::a': key 'not base64!' is not base64: paste the line"),
    ('[peers]\n"fd5e::a" = "AAAA"\n', r"holds 3 bytes, not 32"),
    (f'[peers]\n"fd5e::a" = "{LOW_ORDER}"\n', r"low-order point"),
    (f'[peers]\n"fd5e::a" = ["{KEY1}", "{KEY1}"]\n', r"is listed twice"),
    (f'[peers]\n"fd5e::a" = "{KEY1}"\n\n"fd5e::b" = "{KEY1}"\n',
     r"file:4: peer 'fd5e::b': key .* is listed for 'fd5e::a' too: each node has keys of its own"),
    # Addresses no node can have: an object from them would never match the peer.
    (f'[peers]\n"fd5e::a" = "{KEY1}"\n"fd00::a%eth0" = "{KEY2}"\n', r"file:3: peer 'fd00::a%eth0': has a zone"),
    (f'[peers]\n"ff02::1" = "{KEY1}"\n', r"file:2: peer 'ff02::1': is multicast"),
    (f'[peers]\n"::" = "{KEY1}"\n', r"file:2: peer '::': is the unspecified address"),
    (f'[peers]\n"::1" = "{KEY1}"\n', r"file:2: peer '::1': is loopback"),
    (f'[peers]\n"fe80::1" = "{KEY1}"\n', r"file:2: peer 'fe80::1': is link-local"),
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


# The peers file decides who is a member, and the key file who this node is: both are checked as ssh checks.


def peers_file(tmp_path: Path) -> Path:
    path = tmp_path / "peers.toml"
    path.write_text(f'[peers]\n"{A}" = "{KEY1}"\n')
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_peers_file_others_may_change_is_refused(tmp_path: Path, mode: int):
    path = peers_file(tmp_path)
    assert set(load_peers(path)) == {A}  # its owner's, readable by all: public keys are no secret
    path.chmod(mode)
    with pytest.raises(PeersError, match=rf"has mode {mode:04o}: a peers file must be writable by its owner only; "
                                         rf"run: chmod 600 {path}"):
        load_peers(path)


@pytest.mark.root
def test_a_peers_or_key_file_owned_by_another_user_is_refused(tmp_path: Path):
    path = peers_file(tmp_path)
    os.chown(path, 4242, -1)
    with pytest.raises(PeersError, match=r"is owned by 4242, neither root nor root who runs the node: .*"
                                         rf"run: chown root {path}"):
        load_peers(path)
    key = tmp_path / "a.key"
    generate_key_file(key)
    os.chown(key, 4242, -1)
    with pytest.raises(KeyFileError, match="is owned by 4242"):
        load_private_keys(key)


def refused_at_once(load: Callable[[Path], object], path: Path) -> BaseException:
    """What load raises for path, from a thread that must not hang on it; a hanging one is released."""
    raised: list[BaseException] = []

    def attempt() -> None:
        try:
            load(path)
        except BaseException as error:  # handed to the test
            raised.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked in open(): give it a writer, so the test ends
        with open(path, "wb"):
            pass
        thread.join(10)
        pytest.fail(f"reading {path} hung")
    assert raised, f"{path} was accepted"
    return raised[0]


@pytest.mark.parametrize("load", [load_peers, load_private_keys], ids=["peers", "key"])
def test_a_fifo_or_a_directory_is_refused_without_waiting(tmp_path: Path, load: Callable[[Path], object]):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    error = refused_at_once(load, fifo)
    assert isinstance(error, PeersError | KeyFileError)
    assert f"{fifo} is a FIFO, not a regular file: point at the file itself" in str(error)
    directory = tmp_path / "directory"
    directory.mkdir(mode=0o700)
    assert "is a directory, not a regular file" in str(refused_at_once(load, directory))
