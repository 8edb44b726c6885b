"""Keys on the command line: genkey and pubkey as a user runs them, and the two sealing flags."""

from __future__ import annotations

import argparse
import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from packets_factory import A, B, udp

from agent import wire
from agent.cli import build_parser
from agent.config import ConfigError, add_arguments, config_from_args
from agent.sealing import Sealer


def agent(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """python -m agent ARGS, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_genkey_writes_an_owner_only_key_and_prints_its_public_key(tmp_path: Path):
    path = tmp_path / "node.key"
    result = agent("genkey", str(path), umask=0)  # even with a umask that lets everyone read
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text().strip(), validate=True)) == 32
    public = result.stdout.strip()
    assert len(base64.b64decode(public, validate=True)) == 32
    shown = agent("pubkey", str(path))
    assert (shown.returncode, shown.stdout.strip()) == (0, public)


def test_genkey_never_overwrites(tmp_path: Path):
    path = tmp_path / "node.key"
    assert agent("genkey", str(path)).returncode == 0
    before = path.read_bytes()
    assert_clean_failure(agent("genkey", str(path)), "already exists")
    assert path.read_bytes() == before


def test_genkey_where_it_cannot_write(tmp_path: Path):
    assert_clean_failure(agent("genkey", str(tmp_path / "no-such-dir" / "node.key")),
                         "cannot create")


@pytest.mark.parametrize(("contents", "message"), [
    (b"", "is empty"),
    (b"not a key\n", "is not base64"),
    (base64.b64encode(bytes(16)) + b"\n", "holds 16 bytes, not 32"),
    (b"\xff\xfe\x00binary", "is not text"),
])
def test_pubkey_of_a_bad_file_is_a_clear_error(tmp_path: Path, contents: bytes, message: str):
    path = tmp_path / "node.key"
    path.write_bytes(contents)
    path.chmod(0o600)
    result = agent("pubkey", str(path))
    assert_clean_failure(result, message)
    assert "hoshino-agent genkey writes" in result.stderr


def test_pubkey_of_a_missing_file_names_genkey(tmp_path: Path):
    assert_clean_failure(agent("pubkey", str(tmp_path / "none.key")), "does not exist: create a key with")


def test_a_key_others_can_read_is_refused(tmp_path: Path):
    path = tmp_path / "node.key"
    assert agent("genkey", str(path)).returncode == 0
    path.chmod(0o640)
    assert_clean_failure(agent("pubkey", str(path)), f"mode 0640: a private key must be readable by its owner only; "
                                                     f"run: chmod 600 {path}")


def test_keys_from_genkey_seal_between_two_nodes(tmp_path: Path):
    public = {}
    for address, name in ((A, "a"), (B, "b")):
        result = agent("genkey", str(tmp_path / f"{name}.key"))
        assert result.returncode == 0, result.stderr
        public[address] = result.stdout.strip()
    for peer, name in ((B, "a"), (A, "b")):
        (tmp_path / f"{name}.toml").write_text(f'[peers]\n"{peer}" = "{public[peer]}"\n')
    a = Sealer.from_files(tmp_path / "a.key", tmp_path / "a.toml", A)
    b = Sealer.from_files(tmp_path / "b.key", tmp_path / "b.toml", B)
    key = wire.KeyMaker().make(B)
    assert b.open(key, a.seal(key, udp())).body == udp()


# The node's own flags are untouched by the commands


def test_node_flags_parse_as_before():
    args = build_parser().parse_args(["--bucket", "b", "--mtu", "9000"])
    assert args.command is None
    config = config_from_args(args)
    assert (config.bucket, config.mtu, config.key_file, config.peers_file) == ("b", 9000, None, None)


def node_config(argv: list[str]):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_sealing_flags_and_their_variables(monkeypatch: pytest.MonkeyPatch):
    config = node_config(["--bucket", "b", "--key-file", "/etc/hoshino/node.key", "--peers", "/etc/hoshino/peers"])
    assert (config.key_file, config.peers_file) == ("/etc/hoshino/node.key", "/etc/hoshino/peers")
    monkeypatch.setenv("HOSHINO_KEY_FILE", "k")
    monkeypatch.setenv("HOSHINO_PEERS", "p")
    config = node_config(["--bucket", "b"])
    assert (config.key_file, config.peers_file) == ("k", "p")


@pytest.mark.parametrize(("argv", "message"), [
    (["--key-file", "k"], "--key-file needs --peers"),
    (["--peers", "p"], "--peers needs --key-file"),
])
def test_one_without_the_other_is_a_config_error(argv: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        node_config(["--bucket", "b", *argv])
