"""Sealed objects: node keys, the peers file, sealing and opening bodies."""

from agent.sealing.header import OPEN_REASONS, SEALED_MAGIC, Header, SealError, is_sealed, parse_header
from agent.sealing.keys import (
    KeyFileError,
    decode_public_key,
    encode_public_key,
    generate_key_file,
    key_id,
    load_private_key,
)
from agent.sealing.peers import PeerKey, Peers, PeersError, PeerTable, load_peers, parse_peers
from agent.sealing.sealer import Opened, Sealer

__all__ = [
    "OPEN_REASONS",
    "SEALED_MAGIC",
    "Header",
    "KeyFileError",
    "Opened",
    "PeerKey",
    "PeerTable",
    "Peers",
    "PeersError",
    "SealError",
    "Sealer",
    "decode_public_key",
    "encode_public_key",
    "generate_key_file",
    "is_sealed",
    "key_id",
    "load_peers",
    "load_private_key",
    "parse_header",
    "parse_peers",
]
