"""Node settings, from command-line flags and HOSHINO_* environment variables."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent import ip
from agent.prices import PriceError, load_prices

DEFAULT_NETWORK = "fd5e:59b8:f71d:9a3e::/64"
DEFAULT_MTU = 53049
DEFAULT_INTERFACE = "hoshino0"
DEFAULT_METRICS = "[::]:8081"
DEFAULT_STATE_DIR = "/var/lib/hoshino"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m)?\s*$")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


class ConfigError(ValueError):
    """A setting that cannot be used, with a message for the user."""


def parse_duration(text: str) -> float:
    """Parse '500ms', '1s', '2m' or a bare number of seconds into seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 500ms, 1s, 2m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


_BUCKET_CHARACTERS = re.compile(r"[a-zA-Z0-9.\-_]")


def parse_bucket(text: str) -> str:
    """A bucket name that an S3 client will send ('' is none: config_from_args says so), or an access
    point's ARN; one line on what is wrong instead of the client's regular expressions."""
    if not text or text.startswith("arn:"):
        return text
    if len(text) > 255:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}... is {len(text)} characters long: a bucket name "
                                         f"has at most 63 on AWS, 255 anywhere")
    if bad := next((char for char in text if not _BUCKET_CHARACTERS.fullmatch(char)), None):
        raise argparse.ArgumentTypeError(f"{text!r}: a bucket name cannot hold {bad!r}; it holds letters, digits, "
                                         f"'.', '-' and '_' (on AWS: 3 to 63 lowercase letters, digits, '.' and '-')")
    return text


def parse_endpoint_url(text: str) -> str:
    """An http:// or https:// URL with a host ('' is none: boto3's chain applies)."""
    if not text:
        return text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        if "://" in text:
            raise argparse.ArgumentTypeError(f"{text!r}: an endpoint is http:// or https://, not {parts.scheme}://")
        raise argparse.ArgumentTypeError(f"{text!r} has no scheme: add http:// or https://, as in http://{text}")
    try:
        parts.port  # noqa: B018  (it checks the port as it reads it)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} names no host: write http://HOST:PORT or https://HOST")
    return text


def parse_listen(text: str) -> tuple[str, int] | None:
    """Parse HOST:PORT or [V6]:PORT into (host, port); 'off' disables."""
    if text.strip().lower() == "off":
        return None
    match = re.match(r"^\[([^\]]*)\]:(\d+)$", text) or re.match(r"^([^:]*):(\d+)$", text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise argparse.ArgumentTypeError(f"not HOST:PORT or 'off': {text!r}")
    return match.group(1) or "::", int(match.group(2))


def parse_network(text: str) -> ipaddress.IPv6Network:
    """Parse an IPv6 prefix of length 64 at most that holds only addresses a node may have."""
    try:
        network = ipaddress.IPv6Network(text, strict=True)
    except ValueError as error:
        raise argparse.ArgumentTypeError(_network_problem(text, error)) from None
    if network.prefixlen > 64:
        raise argparse.ArgumentTypeError(
            f"{text} is longer than /64: a node's address needs 64 bits for its interface identifier; use a /64")
    if network.prefixlen == 0:
        raise argparse.ArgumentTypeError(
            f"{text} is every IPv6 address (the default route's): pick a prefix of the tunnel's own, "
            f"such as {DEFAULT_NETWORK}")
    for reserved, what in _RESERVED:
        if network.overlaps(reserved):
            raise argparse.ArgumentTypeError(
                f"{text} includes {what} addresses ({reserved}), which never cross the bucket: "
                f"pick a unique local /64 such as {DEFAULT_NETWORK}")
    return network


def parse_wakeup(text: str) -> str:
    """'poll' or 'sqs'."""
    if text not in ("poll", "sqs"):
        raise argparse.ArgumentTypeError(f"--wakeup takes poll or sqs, not {text!r}")
    return text


S3_CLIENTS = ("boto3", "obstore")
"""The S3 clients a node can send its bucket's requests with (agent.transport.S3_CLIENTS)."""
EXIT_TCP = ("relay", "forward")
"""How an exit node sends its peers' TCP on (--exit-tcp)."""
DEFAULT_S3_CLIENT = "obstore"


def parse_s3_client(text: str) -> str:
    """One of S3_CLIENTS."""
    if text not in S3_CLIENTS:
        raise argparse.ArgumentTypeError(f"--s3-client takes {' or '.join(S3_CLIENTS)}, not {text!r}")
    return text


_RESERVED = (
    (ipaddress.IPv6Network("ff00::/8"), "multicast"),
    (ipaddress.IPv6Network("fe80::/10"), "link-local"),
    (ipaddress.IPv6Network("::/127"), "loopback and unspecified"),
)


def _network_problem(text: str, error: ValueError) -> str:
    """Why text is not an IPv6 network, and what to write instead."""
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"not an IPv6 network: {text!r}: write PREFIX/LENGTH, such as {DEFAULT_NETWORK}"
    if loose.version == 4:
        return (f"{text} is an IPv4 network: --network is the IPv6 /64 that names nodes (IPv4 addresses come "
                f"from {ip.IPV4_NETWORK}, see --address4); use an IPv6 /64 such as {DEFAULT_NETWORK}")
    return f"{text} has bits set after the prefix length: did you mean {loose}?"


def parse_address(text: str) -> ipaddress.IPv6Address:
    """Parse an IPv6 address."""
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        pass
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv6 address: {text!r}") from None
    raise argparse.ArgumentTypeError(f"{text} is an IPv4 address: this flag takes a node's IPv6 address "
                                     f"(a node's IPv4 address is --address4)")


def parse_exit_node(text: str) -> ipaddress.IPv6Address | str:
    """A peer's IPv6 address, or its name in the peers file (looked up again on each reload)."""
    try:
        return parse_address(text)
    except argparse.ArgumentTypeError:
        if ":" in text or ("." in text and text.replace(".", "").isdigit()):
            raise
    if not text or not text.isprintable() or any(character.isspace() for character in text):
        raise argparse.ArgumentTypeError(f"{text!r}: give the exit node's IPv6 address, or its name in the peers file")
    return text


def parse_address4(text: str) -> ipaddress.IPv4Address:
    """Parse a node's IPv4 address, inside 100.64.0.0/10."""
    try:
        return ip.parse_ipv4_node_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_routes(text: str) -> tuple[ip.Network, ...]:
    """Parse PREFIX[,PREFIX...]; an empty text is no routes."""
    prefixes: list[ip.Network] = []
    for part in filter(None, (item.strip() for item in text.split(","))):
        try:
            prefix = ip.parse_prefix(part)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if prefix.prefixlen == 0:
            raise argparse.ArgumentTypeError(f"{prefix} is a default route: pass --advertise-exit-node instead")
        prefixes.append(prefix)
    return tuple(prefixes)


def parse_exit_tcp(text: str) -> str:
    """--exit-tcp: relay or forward."""
    if text not in EXIT_TCP:
        raise argparse.ArgumentTypeError(f"--exit-tcp takes {' or '.join(EXIT_TCP)}, not {text!r}")
    return text


def parse_switch(text: str) -> bool:
    """A HOSHINO_* variable for an on/off flag: 1, true, yes or on; 0, false, no, off or empty."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not on or off: {text!r} (try 1 or 0)")


MAX_INTERFACE_NAME = 15
"""Linux's limit on a device name (IFNAMSIZ less its terminating NUL), in bytes."""


def interface_problem(name: str) -> str:
    """Why Linux would refuse name for a device, or '' when it will take it."""
    if not name:
        return "--interface is empty: name the TUN device, such as hoshino0"
    if len(name.encode()) > MAX_INTERFACE_NAME:
        return (f"--interface {name!r} is {len(name.encode())} bytes long: Linux allows at most "
                f"{MAX_INTERFACE_NAME}, such as {DEFAULT_INTERFACE}")
    if name in (".", "..") or any(char == "/" or char == ":" or char.isspace() for char in name):
        return f"--interface {name!r}: a device name cannot be '.' or '..' nor hold '/', ':' or spaces"
    return ""


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


@dataclass(frozen=True)
class Config:
    """Everything one node needs to run."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    key_prefix: str = ""
    interface: str = DEFAULT_INTERFACE
    mtu: int = DEFAULT_MTU
    network: ipaddress.IPv6Network = field(default_factory=lambda: ipaddress.IPv6Network(DEFAULT_NETWORK))
    address: ipaddress.IPv6Address | None = None
    machine_id_file: str = "/etc/machine-id"
    slowest_poll: float = 0.5
    fastest_poll: float = 0.001
    metrics_listen: tuple[str, int] | None = ("::", 8081)
    netns: str | None = None
    max_age: float = 10.0
    """Objects sent longer ago than this (by their key's ULID) are refused as stale."""
    wakeup: str = "poll"
    """How a receiver learns of new objects: 'poll' (LIST on a heartbeat) or 'sqs' (a doorbell)."""
    sqs_endpoint_url: str | None = None
    s3_client: str = DEFAULT_S3_CLIENT
    """Which client sends the bucket's requests (SQS's always go through boto3)."""
    prices: str = "aws-s3-standard"
    """A price table's name or a TOML file, for the cost estimate."""
    key_file: str | None = None
    """This node's private key: when set, every object is sealed and unsealed objects are dropped."""
    peers_file: str | None = None
    """The peers file (TOML): the only nodes whose objects are accepted, and their public keys."""
    state_dir: str | None = None
    """Where the keys this node delivered are kept across restarts (agent.journal); None keeps them in memory.
    The command line's default is DEFAULT_STATE_DIR; a Config made in code names its own, or keeps none."""
    address4: ipaddress.IPv4Address | None = None
    """This node's IPv4 address; None: derived from its IPv6 address (agent.ip.derived_ipv4)."""
    advertise_routes: tuple[ip.Network, ...] = ()
    accept_routes: bool = False
    advertise_exit_node: bool = False
    exit_node: ipaddress.IPv6Address | str | None = None
    """The peer to send everything through: its address, or its name in the peers file."""
    exit_interface: str | None = None
    """The exit node's uplink; None: the device of its own default route."""
    exit_tcp: str = "relay"
    """How an exit node sends its peers' TCP on: 'relay' (agent.relay) or 'forward' (routed as it came)."""

    @property
    def advertised(self) -> tuple[ip.Network, ...]:
        """Every prefix this node carries for its peers."""
        return self.advertise_routes + (ip.DEFAULT_ROUTES if self.advertise_exit_node else ())

    @property
    def routes_beyond_itself(self) -> bool:
        """Whether this node routes more than its own addresses (which needs sealing)."""
        return bool(self.advertised or self.accept_routes or self.exit_node)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_prefix", slash_terminated(self.key_prefix))


def slash_terminated(key_prefix: str) -> str:
    """A key prefix ending in '/' (one added when missing), or none.

    Without the slash, IAM's `net1*` would also grant `net10...`, and prefix `net` with address
    `1::2:3` would name the same inbox as prefix `net1` with `::2:3`.
    """
    return key_prefix if not key_prefix or key_prefix.endswith("/") else key_prefix + "/"


@dataclass(frozen=True)
class Flag:
    """One command-line flag and the environment variable that sets its default."""

    name: str
    env: str
    metavar: str
    help: str
    default: str | int | None = None
    type: Callable[[str], Any] = str
    switch: bool = False
    """An on/off flag without a value (its variable takes 1 or 0)."""


FLAGS = [
    Flag("--bucket", "HOSHINO_BUCKET", "NAME", "S3 bucket that carries the packets (required)", None,
         parse_bucket),
    Flag("--endpoint-url", "HOSHINO_ENDPOINT_URL", "URL",
         "S3-compatible endpoint, http:// or https://; without it boto3's chain applies (AWS_ENDPOINT_URL, "
         "profiles)", None, parse_endpoint_url),
    Flag("--region", "HOSHINO_REGION", "REGION", "S3 region"),
    Flag("--key-prefix", "HOSHINO_KEY_PREFIX", "PREFIX",
         "prefix before every object key, to share a bucket; a '/' is added when it does not end in one "
         "(default: none)", ""),
    Flag("--interface", "HOSHINO_INTERFACE", "NAME", f"TUN device name (default {DEFAULT_INTERFACE})",
         DEFAULT_INTERFACE),
    Flag("--mtu", "HOSHINO_MTU", "BYTES", f"device MTU (default {DEFAULT_MTU})", DEFAULT_MTU, int),
    Flag("--network", "HOSHINO_NETWORK", "PREFIX", f"network prefix (default {DEFAULT_NETWORK})",
         DEFAULT_NETWORK, parse_network),
    Flag("--address", "HOSHINO_ADDRESS", "ADDR",
         "this node's address (default: network + first 64 bits of machine-id)", None, parse_address),
    Flag("--machine-id-file", "HOSHINO_MACHINE_ID_FILE", "PATH",
         "where to read the machine-id (default /etc/machine-id)", "/etc/machine-id"),
    Flag("--slowest-poll", "HOSHINO_SLOWEST_POLL", "DURATION",
         "longest interval between polls when idle (default 500ms)", "500ms", parse_duration),
    Flag("--fastest-poll", "HOSHINO_FASTEST_POLL", "DURATION",
         "shortest interval between polls under load (default 1ms)", "1ms", parse_duration),
    Flag("--metrics-listen", "HOSHINO_METRICS_LISTEN", "HOST:PORT",
         f"Prometheus metrics address, or 'off' (default {DEFAULT_METRICS})", DEFAULT_METRICS, parse_listen),
    Flag("--netns", "HOSHINO_NETNS", "NAME",
         "existing network namespace for the device and metrics listener (S3 traffic stays here)"),
    Flag("--max-age", "HOSHINO_MAX_AGE", "DURATION",
         "refuse objects sent longer ago than this (default 10s; 2s of clock skew allowed)", "10s", parse_duration),
    Flag("--wakeup", "HOSHINO_WAKEUP", "poll|sqs",
         "how new objects are noticed: LIST on a heartbeat, or an SQS doorbell (default poll)", "poll",
         parse_wakeup),
    Flag("--sqs-endpoint-url", "HOSHINO_SQS_ENDPOINT_URL", "URL",
         "SQS endpoint for the doorbell (default: the --endpoint-url, else boto3's chain)", None,
         parse_endpoint_url),
    Flag("--s3-client", "HOSHINO_S3_CLIENT", "obstore|boto3",
         f"what sends S3 requests: obstore (Rust, a fifth of the CPU) or boto3 (default {DEFAULT_S3_CLIENT})",
         DEFAULT_S3_CLIENT, parse_s3_client),
    Flag("--prices", "HOSHINO_PRICES", "NAME|FILE",
         "price table for the cost estimate: aws-s3-standard, aws-s3-express, cloudflare-r2 or a TOML file "
         "(default aws-s3-standard)", "aws-s3-standard"),
    Flag("--key-file", "HOSHINO_KEY_FILE", "PATH",
         "this node's private key (make one: hoshino-agent genkey PATH); seals every object, needs --peers"),
    Flag("--peers", "HOSHINO_PEERS", "PATH",
         "peers file: each peer's address and public key, in TOML; needs --key-file"),
    Flag("--state-dir", "HOSHINO_STATE_DIR", "DIR",
         f"where the keys of delivered objects are kept, so a restarted node delivers none twice, or 'off' "
         f"(default {DEFAULT_STATE_DIR})", DEFAULT_STATE_DIR),
    Flag("--address4", "HOSHINO_ADDRESS4", "ADDR",
         "this node's IPv4 address in 100.64.0.0/10 (default: from the low 22 bits of its IPv6 address)",
         None, parse_address4),
    Flag("--advertise-routes", "HOSHINO_ADVERTISE_ROUTES", "PREFIX[,PREFIX]",
         "carry traffic for these prefixes (a LAN behind this node) for peers whose peers file lists them; "
         "sealed only", "", parse_routes),
    Flag("--accept-routes", "HOSHINO_ACCEPT_ROUTES", "",
         "route to the prefixes peers carry (their routes in the peers file) through the device; sealed only",
         "", parse_switch, switch=True),
    Flag("--advertise-exit-node", "HOSHINO_ADVERTISE_EXIT_NODE", "",
         "forward peers' traffic to anywhere out of the uplink, masqueraded; sealed only", "", parse_switch,
         switch=True),
    Flag("--exit-node", "HOSHINO_EXIT_NODE", "ADDR|NAME",
         "send all traffic through this peer, by address or by name (its peers file entry has routes 0.0.0.0/0 "
         "and ::/0; SIGHUP follows edits of it); sealed only", None, parse_exit_node),
    Flag("--exit-interface", "HOSHINO_EXIT_INTERFACE", "NAME",
         "with --advertise-exit-node: the uplink (default: the device of the default route)"),
    Flag("--exit-tcp", "HOSHINO_EXIT_TCP", "relay|forward",
         "with --advertise-exit-node: how peers' TCP leaves: relay (ended here and carried on by the exit node's "
         "own connection, so the tunnel's leg keeps the tunnel's MTU) or forward (routed, MSS clamped)",
         "relay", parse_exit_tcp),
]


def add_arguments(parser: argparse.ArgumentParser, helps: Mapping[str, str] | None = None) -> None:
    """Add the node's flags; each one's default comes from its environment variable if set. helps replaces
    the help of the flags it names (a command for which a flag means something else)."""
    group = parser.add_argument_group("node")
    for flag in FLAGS:
        text = f"{(helps or {}).get(flag.name, flag.help)} [${flag.env}]"
        if flag.switch:
            group.add_argument(flag.name, action="store_true", default=flag.type(os.environ.get(flag.env, "")),
                               help=text)
            continue
        group.add_argument(
            flag.name, metavar=flag.metavar, type=flag.type, default=os.environ.get(flag.env, flag.default),
            help=text,
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """Build a Config from parsed flags, checking what argparse cannot."""
    if not args.bucket:
        raise ConfigError("no bucket: pass --bucket NAME or set HOSHINO_BUCKET")
    if not 1280 <= args.mtu <= 65535:
        raise ConfigError(f"--mtu {args.mtu}: IPv6 needs 1280 to 65535")
    if args.max_age <= 0:
        raise ConfigError("--max-age must be above zero: it is how old an object may be and still be delivered "
                          "(default 10s)")
    if problem := interface_problem(args.interface):
        raise ConfigError(problem)
    if args.slowest_poll <= 0:
        raise ConfigError("--slowest-poll must be above zero: it is how long an idle node waits between polls "
                          "(default 500ms)")
    if args.fastest_poll <= 0:
        raise ConfigError("--fastest-poll must be above zero: it is the shortest wait between polls (default 1ms)")
    if args.fastest_poll > args.slowest_poll:
        raise ConfigError(f"--fastest-poll {_seconds(args.fastest_poll)} is longer than --slowest-poll "
                          f"{_seconds(args.slowest_poll)}: the fastest poll must be the shorter interval")
    network = args.network
    if args.address is not None and args.address not in network:
        raise ConfigError(f"--address {args.address} is outside --network {network}")
    if args.address is None and network.prefixlen != 64:
        first = ipaddress.IPv6Network((network.network_address, 64))
        raise ConfigError(
            f"--network {network}: a node's address is the network's first /64 ({first}) plus the first 64 bits "
            f"of its machine-id, so every node would land in {first}: use a /64, or give each node --address")
    try:
        load_prices(args.prices)
    except PriceError as error:
        raise ConfigError(f"--prices: {error}") from None
    if bool(args.key_file) != bool(args.peers):
        raise ConfigError(
            "--key-file needs --peers (HOSHINO_PEERS): the peers whose objects to accept" if args.key_file else
            "--peers needs --key-file (HOSHINO_KEY_FILE): this node's private key, from hoshino-agent genkey")
    if args.wakeup == "sqs":
        from agent.transport.sqs import queue_name_problem  # boto3 is for nodes, not for every reader of flags

        # Without --address, the node's comes from its machine-id: the node checks it once it knows it.
        if args.address is not None and (problem := queue_name_problem(slash_terminated(args.key_prefix),
                                                                       args.address)):
            raise ConfigError(problem)
    _check_routing(args)
    return Config(
        bucket=args.bucket,
        endpoint_url=args.endpoint_url or None,
        region=args.region or None,
        key_prefix=args.key_prefix,
        interface=args.interface,
        mtu=args.mtu,
        network=args.network,
        address=args.address,
        machine_id_file=args.machine_id_file,
        slowest_poll=args.slowest_poll,
        fastest_poll=args.fastest_poll,
        metrics_listen=args.metrics_listen,
        netns=args.netns or None,
        max_age=args.max_age,
        wakeup=args.wakeup,
        sqs_endpoint_url=args.sqs_endpoint_url or args.endpoint_url or None,
        s3_client=args.s3_client,
        prices=args.prices,
        key_file=args.key_file or None,
        peers_file=args.peers or None,
        state_dir=None if args.state_dir in ("", "off") else args.state_dir,
        address4=args.address4,
        advertise_routes=args.advertise_routes,
        accept_routes=args.accept_routes,
        advertise_exit_node=args.advertise_exit_node,
        exit_node=args.exit_node,
        exit_interface=args.exit_interface or None,
        exit_tcp=args.exit_tcp,
    )


def _check_routing(args: argparse.Namespace) -> None:
    """Routing beyond the node's own addresses needs sealing: else anyone who can write to the bucket
    could send into a LAN, or relay through an exit node."""
    wanted = [name for name, on in (("--advertise-exit-node", args.advertise_exit_node),
                                    ("--advertise-routes", args.advertise_routes),
                                    ("--exit-node", args.exit_node), ("--accept-routes", args.accept_routes)) if on]
    if wanted and not args.key_file:
        raise ConfigError(f"{wanted[0]} needs sealing (--key-file and --peers): without it anyone who can write to "
                          f"the bucket could send through this node")
    if args.exit_node is not None and args.advertise_exit_node:
        raise ConfigError("--exit-node and --advertise-exit-node: a node is an exit node or uses one, not both")
    if args.exit_interface and not args.advertise_exit_node:
        raise ConfigError("--exit-interface is the uplink of an exit node: pass --advertise-exit-node too")
    if args.exit_tcp != "relay" and not args.advertise_exit_node:
        raise ConfigError("--exit-tcp is how an exit node sends TCP on: pass --advertise-exit-node too")
    if args.exit_interface and (problem := interface_problem(args.exit_interface)):
        raise ConfigError(problem.replace("--interface", "--exit-interface"))
