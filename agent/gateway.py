"""What a node that routes changes in its device's namespace; every change is undone on stop.

- A subnet router or exit node (--advertise-routes, --advertise-exit-node) switches forwarding on.
- An exit node also keeps router advertisements on its uplink (accept_ra=2: forwarding would stop
  them) and masquerades what its peers send out of it, with TCP MSS clamped to the uplink's MTU (the
  tunnel's is 53049), in one nftables table of its own. Nothing from the uplink enters the tunnel
  unless it answers a connection from inside, as a NAT gateway does. Peers' TCP bound for the uplink
  is redirected to the exit node's relay (agent.relay) unless --exit-tcp forward.
- A node that accepts routes routes its peers' prefixes through the device.
- A node that uses an exit node routes everything through the device from a table of its own, which
  its own marked sockets (S3, SQS) skip, as wg-quick does: `not fwmark` selects the tunnel's table,
  and the main table is asked first without its default routes (`suppress_prefixlength 0`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from agent import ip
from agent.netconf import NetconfError, inside

MARK = 0x4853
"""The firewall mark on the agent's own sockets, and the number of the routing table they skip."""
RULE_PRIORITY = 5209
"""Where the exit node's two policy rules go per family: before the main table's (32766)."""
FORWARDED = 0x00480000
"""The mark bit the exit node's table sets on what it forwards from the tunnel, to masquerade it."""


class GatewayError(NetconfError):
    """A routing change the kernel refused, with the fix."""


class Undo:
    """Changes made, each with the step that undoes it; undone last first, each on its own."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, step: Callable[[], object]) -> None:
        self._steps.append((what, step))

    def __bool__(self) -> bool:
        return bool(self._steps)

    def run(self) -> list[str]:
        """Undo everything; return what failed."""
        problems = []
        while self._steps:
            what, step = self._steps.pop()
            try:
                step()
            except Exception as error:  # one failed undo must not leave the others behind
                problems.append(f"undoing {what}: {error}")
        return problems


def table_name(interface: str) -> str:
    """The exit node's nftables table: one per device, so two agents in one namespace keep theirs apart."""
    return "hoshino_" + re.sub(r"[^A-Za-z0-9_]", "_", interface)


def _run(namespace: str | None, *command: str, stdin: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace and command[0] != "ip" else []
    if namespace and command[0] == "ip":
        command = ("ip", "-n", namespace, *command[1:])
    try:
        done = subprocess.run([*prefix, *command], input=stdin, capture_output=True, text=True, timeout=30,
                              check=False)
    except FileNotFoundError:
        package = "nftables" if command[0] == "nft" else "iproute2"
        raise GatewayError(f"no {command[0]} command: install Debian's {package}") from None
    if done.returncode:
        raise GatewayError(f"{' '.join(command)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


def _sysctl(namespace: str | None, name: str, value: str | None = None) -> str:
    """Read a sysctl of the namespace (net/ipv4/ip_forward), writing value first if given."""
    path = Path("/proc/sys") / name
    with inside(namespace):
        if value is not None:
            path.write_text(value)
        return path.read_text().strip()


def set_sysctl(undo: Undo, namespace: str | None, name: str, value: str) -> None:
    """Set a sysctl in the namespace, and remember its old value to put back."""
    try:
        old = _sysctl(namespace, name)
        if old != value:
            _sysctl(namespace, name, value)
            undo.add(f"sysctl {name}", lambda: _sysctl(namespace, name, old))
    except OSError as error:
        raise GatewayError(f"cannot set {name.replace('/', '.')} to {value}: {error.strerror}") from None


def forwarding_sysctls(families: Iterable[int]) -> list[str]:
    """The sysctls that switch forwarding on for these IP versions."""
    names = {4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding"}
    return [names[family] for family in sorted(set(families))]


def enable_forwarding(undo: Undo, namespace: str | None, families: Iterable[int]) -> None:
    for name in forwarding_sysctls(families):
        set_sysctl(undo, namespace, name, "1")


def add_routes(undo: Undo, namespace: str | None, interface: str, prefixes: Iterable[ip.Network],
               table: int | None = None) -> None:
    """Route each prefix through the device (in the given table, else the main one)."""
    for prefix in prefixes:
        where = ("table", str(table)) if table is not None else ()
        route = (f"-{prefix.version}", "route", "{}", str(prefix), "dev", interface, *where)
        add = tuple(part if part != "{}" else "add" for part in route)
        delete = tuple(part if part != "{}" else "del" for part in route)
        try:
            _run(namespace, "ip", *add)
        except GatewayError as error:
            if "File exists" in str(error):
                raise GatewayError(f"{prefix} is routed already in {namespace or 'this namespace'}: "
                                   f"another route or agent holds it") from None
            raise
        undo.add(f"route {prefix}", lambda delete=delete: _run(namespace, "ip", *delete))  # type: ignore[misc]


def uplink(namespace: str | None) -> str:
    """The device of the namespace's default route (IPv4 first), for an exit node without --exit-interface."""
    for family in ("-4", "-6"):
        found = re.search(r"\bdev (\S+)", _run(namespace, "ip", family, "route", "show", "default"))
        if found:
            return found.group(1)
    raise GatewayError("no default route to forward to: give this namespace one, or pass --exit-interface")


def exit_ruleset(interface: str, uplink_name: str, relay_ports: Mapping[int, int] | None = None) -> str:
    """The exit node's nftables table: masquerade and MSS clamping out, only replies in; with relay_ports
    (IP version -> port), TCP from the tunnel that would leave by the uplink goes to the relay (agent.relay)
    instead, and only such redirected connections reach the relay's ports."""
    relay = ""
    if relay_ports:
        ports = ", ".join(str(port) for port in sorted(set(relay_ports.values())))
        redirects = "\n".join(
            f'        iifname "{interface}" meta nfproto ipv{version} meta l4proto tcp fib daddr oifname '
            f'"{uplink_name}" redirect to :{port}' for version, port in sorted(relay_ports.items()))
        relay = f"""    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
{redirects}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        tcp dport {{ {ports} }} ct status dnat accept
        tcp dport {{ {ports} }} drop
    }}
"""
    return f"""table inet {table_name(interface)} {{
{relay}    chain forward {{
        type filter hook forward priority mangle; policy accept;
        iifname "{uplink_name}" oifname "{interface}" ct state established,related accept
        iifname "{uplink_name}" oifname "{interface}" drop
        iifname "{interface}" oifname "{uplink_name}" meta mark set meta mark | {FORWARDED:#010x}
        iifname "{interface}" oifname "{uplink_name}" tcp flags syn tcp option maxseg size set rt mtu
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        meta mark & {FORWARDED:#010x} == {FORWARDED:#010x} masquerade
    }}
}}
"""


def table_exists(namespace: str | None, interface: str) -> bool:
    return f"table inet {table_name(interface)}" in _run(namespace, "nft", "list", "tables")


def become_exit_node(undo: Undo, namespace: str | None, interface: str, uplink_name: str | None,
                     relay_ports: Mapping[int, int] | None = None) -> str:
    """Forward and masquerade peers' traffic out of the uplink (their TCP to the relay's ports, if given);
    return the uplink's name."""
    name = uplink_name or uplink(namespace)
    if not Path(f"/sys/class/net/{name}").exists() and namespace is None:
        raise GatewayError(f"no device {name}: name the uplink with --exit-interface")
    enable_forwarding(undo, namespace, (4, 6))
    with contextlib.suppress(GatewayError):  # an uplink without IPv6 has no accept_ra to keep
        set_sysctl(undo, namespace, f"net/ipv6/conf/{name}/accept_ra", "2")
    if table_exists(namespace, interface):
        raise GatewayError(f"nftables table inet {table_name(interface)} exists already: another agent with "
                           f"--interface {interface} runs here, or one was killed; remove it with "
                           f"'nft delete table inet {table_name(interface)}'")
    _run(namespace, "nft", "-f", "-", stdin=exit_ruleset(interface, name, relay_ports))
    undo.add(f"nftables table {table_name(interface)}",
             lambda: _run(namespace, "nft", "delete", "table", "inet", table_name(interface)))
    return name


def table_users(namespace: str | None) -> str:
    """What already uses the exit node's routing table or mark in the namespace (routes, rules), or ''."""
    found = []
    for family in ("-4", "-6"):
        try:
            found += _run(namespace, "ip", family, "route", "show", "table", str(MARK)).splitlines()
        except GatewayError as error:
            if "does not exist" not in str(error):  # IPv6 says so of a table never used: nothing uses it
                raise
        found += [rule for rule in _run(namespace, "ip", family, "rule").splitlines()
                  if f"lookup {MARK}" in rule or f"fwmark {MARK:#x}" in rule]
    return "; ".join(line.strip() for line in found)


def use_exit_node(undo: Undo, namespace: str | None, interface: str) -> None:
    """Send everything through the device, except what the agent's own marked sockets send."""
    if users := table_users(namespace):
        raise GatewayError(f"routing table {MARK} and mark {MARK:#x} are in use already in "
                           f"{namespace or 'this namespace'} ({users}): another agent with --exit-node runs here, "
                           f"or one was killed; remove its routes and rules ('ip rule del', 'ip route flush table "
                           f"{MARK}')")
    add_routes(undo, namespace, interface, ip.DEFAULT_ROUTES, table=MARK)
    for family in ("-4", "-6"):
        rules = (
            ("not", "fwmark", str(MARK), "table", str(MARK), "priority", str(RULE_PRIORITY + 1)),
            ("table", "main", "suppress_prefixlength", "0", "priority", str(RULE_PRIORITY)),
        )
        for rule in rules:
            _run(namespace, "ip", family, "rule", "add", *rule)
            undo.add(f"rule {' '.join(rule)}",
                     lambda family=family, rule=rule: _run(namespace, "ip", family, "rule", "del", *rule))  # type: ignore[misc]


def accepted_routes(routes: Iterable[tuple[ip.Network, ipaddress.IPv6Address]]) -> list[ip.Network]:
    """The peers' prefixes a node that accepts routes routes through its device: not the default routes
    (those are --exit-node's), nor peers' IPv4 addresses (the device routes 100.64.0.0/10 already)."""
    return [prefix for prefix, _ in routes if prefix not in ip.DEFAULT_ROUTES
            and not (isinstance(prefix, ipaddress.IPv4Network) and prefix.subnet_of(ip.IPV4_NETWORK))]
