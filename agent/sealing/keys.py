"""X25519 key files and public-key text, WireGuard-style: one base64 line per key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from agent.sealing.trusted_file import UntrustedFile, read_trusted

KEY_BYTES = 32
KEY_ID_BYTES = 8
KEY_FILE_LIMIT = 1024
"""A key line is 45 bytes and a file holds a few: a larger file is not a key file."""
_KEY_ID_LABEL = b"hoshino key id v1"


class KeyFileError(ValueError):
    """A key file or key text that cannot be used, with a message naming the fix."""


def public_bytes(key: X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes_raw()


def encode_public_key(key: X25519PublicKey) -> str:
    """A public key as the base64 text that peers files hold."""
    return base64.b64encode(public_bytes(key)).decode("ascii")


def decode_key_bytes(text: str) -> bytes:
    """The 32 bytes of a base64 key; KeyFileError says what is wrong."""
    if not text.strip():
        raise KeyFileError("is empty")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("is not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyFileError(f"holds {len(raw)} bytes, not {KEY_BYTES}")
    return raw


def decode_public_key(text: str) -> X25519PublicKey:
    """Parse a base64 public key, refusing the low-order points that would give every peer one shared secret."""
    key = X25519PublicKey.from_public_bytes(decode_key_bytes(text))
    try:
        # A low-order point yields the all-zero secret whatever the private key: cryptography refuses it.
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise KeyFileError("is a low-order point, not a usable public key") from None
    return key


def key_id(key: X25519PublicKey) -> bytes:
    """The 8 bytes that name a public key in a sealed header: SHA-256(label || key), truncated."""
    return hashlib.sha256(_KEY_ID_LABEL + public_bytes(key)).digest()[:KEY_ID_BYTES]


def generate_key_file(path: str | Path) -> X25519PublicKey:
    """Write a new private key to path (mode 0600 from creation, never over an existing file); return its public key."""
    key = X25519PrivateKey.generate()
    text = base64.b64encode(key.private_bytes_raw()) + b"\n"
    try:
        # O_EXCL: refuse an existing file (or a symlink to one); 0600 at creation, so no moment is readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists: choose another path, or remove it if that key is unused") from None
    except OSError as error:
        raise KeyFileError(f"cannot create {path}: {error.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # a umask can only narrow the mode; make it exactly 0600 whatever it was
        os.write(fd, text)
        os.fsync(fd)
    except OSError as error:
        os.close(fd)
        os.unlink(path)
        raise KeyFileError(f"cannot write {path}: {error.strerror}") from None
    os.close(fd)
    return key.public_key()


def load_private_key(path: str | Path) -> X25519PrivateKey:
    """The current key of a private key file (its first line)."""
    return load_private_keys(path)[0]


def load_private_keys(path: str | Path) -> list[X25519PrivateKey]:
    """Read a private key file: the current key, then any retired ones still accepted while peers catch up.

    Refuse a file that others may read or write or that another user owns, as ssh does.
    """
    try:
        data = read_trusted(path, KEY_FILE_LIMIT, "a private key", secret=True)
    except UntrustedFile as error:
        raise KeyFileError(str(error)) from None
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist: create a key with: hoshino-agent genkey {path}") from None
    except OSError as error:
        raise KeyFileError(f"cannot read {path}: {error.strerror}") from None
    try:
        lines = [line for line in data.decode("ascii").splitlines() if line.strip()] or [""]
        raws = [decode_key_bytes(line) for line in lines]
    except (UnicodeDecodeError, KeyFileError) as error:
        detail = error if isinstance(error, KeyFileError) else "is not text"
        raise KeyFileError(
            f"{path} {detail}: a key file holds one base64 line of {KEY_BYTES} bytes, as hoshino-agent genkey "
            "writes (and, while a key is being replaced, the retired key on the next line)") from None
    return [X25519PrivateKey.from_private_bytes(raw) for raw in raws]
