"""Network configuration over netlink (pyroute2): address, MTU, link up, route, namespaces."""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from agent.ip import IPV4_NETWORK, Network

NETNS_DIR = Path("/run/netns")
# Set before the link comes up, so the kernel sends no router solicitations and does no DAD.
DEVICE_SYSCTLS = {
    "accept_ra": "0",
    "router_solicitations": "0",
    "accept_dad": "0",
    "dad_transmits": "0",
    "addr_gen_mode": "1",  # no EUI-64 address: a TUN has no hardware address to derive from
}


class NetconfError(RuntimeError):
    """A network change the kernel refused, with the fix for the user."""


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


@contextmanager
def inside(name: str | None) -> Iterator[None]:
    """Run the block with this thread in the named network namespace (None: stay where it is)."""
    if name is None:
        yield
        return
    if not namespace_exists(name):
        raise NetconfError(f"no network namespace {name!r}: create it with 'ip netns add {name}'")
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        try:
            netns.setns(target)
        except OSError as error:
            raise NetconfError(f"cannot enter namespace {name!r}: needs CAP_SYS_ADMIN: run as root ({error})") from None
        yield
    finally:
        netns.setns(saved)
        os.close(target)
        os.close(saved)


def _netlink(name: str | None) -> IPRoute:
    """A netlink socket in the named namespace; flags=0 so a typo never creates one."""
    if name is None:
        return IPRoute()
    if not namespace_exists(name):
        raise NetconfError(f"no network namespace {name!r}: create it with 'ip netns add {name}'")
    return IPRoute(netns=name, flags=0)


def _link_index(ipr: IPRoute, interface: str) -> int:
    found = ipr.link_lookup(ifname=interface)
    if not found:
        raise NetconfError(f"no device {interface}")
    return int(found[0])


def _write_sysctls(interface: str) -> None:
    for name, value in DEVICE_SYSCTLS.items():
        path = Path(f"/proc/sys/net/ipv6/conf/{interface}/{name}")
        if path.exists():
            path.write_text(value)


def configure(
    interface: str,
    address: ipaddress.IPv6Address,
    network: ipaddress.IPv6Network,
    mtu: int,
    namespace: str | None = None,
    address4: ipaddress.IPv4Address | None = None,
) -> None:
    """Give the device its MTU and addresses, bring it up and route the network (and its IPv4 space) through it."""
    with inside(namespace):
        _write_sysctls(interface)
    with _netlink(namespace) as ipr:
        index = _link_index(ipr, interface)
        for entry in ipr.get_addr(family=10):
            if entry.get_attr("IFA_ADDRESS") == address.compressed and entry["index"] != index:
                links = ipr.get_links(entry["index"])
                holder = links[0].get_attr("IFLA_IFNAME") if links else "another device"
                raise NetconfError(
                    f"address {address} is already in use on {holder}: another hoshino-agent on this machine-id runs "
                    f"in this namespace? Stop it, or pass --address, --netns or --network")
        try:
            ipr.link("set", index=index, mtu=mtu)
        except NetlinkError:
            largest = ipr.get_links(index)[0].get_attr("IFLA_MAX_MTU") or 65535
            raise NetconfError(f"the kernel refused MTU {mtu}: {interface} accepts at most {largest}") from None
        for own in (address, address4):
            if own is None:
                continue
            try:
                ipr.addr("add", index=index, address=own.compressed, prefixlen=own.max_prefixlen)
            except NetlinkError as error:
                if error.code != errno.EEXIST:
                    raise NetconfError(f"cannot give {interface} the address {own}: {error.args[-1]}") from None
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as error:
            raise NetconfError(f"cannot bring {interface} up: {error.args[-1]}") from None
        for routed in (network, *((IPV4_NETWORK,) if address4 is not None else ())):
            try:
                ipr.route("add", dst=routed.network_address.compressed, dst_len=routed.prefixlen, oif=index)
            except NetlinkError as error:
                if error.code == errno.EEXIST:
                    raise NetconfError(_route_taken(ipr, routed, namespace)) from None
                raise NetconfError(f"cannot route {routed} through {interface}: {error.args[-1]}") from None


def _route_taken(ipr: IPRoute, network: Network, namespace: str | None) -> str:
    """Say which device already routes network, and what to do about it."""
    where = f"namespace {namespace}" if namespace else "this network namespace"
    holders = []
    for route in ipr.get_routes(family=10 if network.version == 6 else 2):
        destination = route.get_attr("RTA_DST") or ("::" if network.version == 6 else "0.0.0.0")
        if (ipaddress.ip_address(destination), route["dst_len"]) == (network.network_address, network.prefixlen) \
                and route.get_attr("RTA_OIF"):
            links = ipr.get_links(route.get_attr("RTA_OIF"))
            holders.append(links[0].get_attr("IFLA_IFNAME") if links else str(route.get_attr("RTA_OIF")))
    via = f" through {', '.join(holders)}" if holders else ""
    return (f"{where} already routes {network}{via}: another hoshino-agent runs there, or the prefix is in use; "
            f"stop it, or pass another --network or --netns")


def deconfigure(
    interface: str,
    address: ipaddress.IPv6Address,
    network: ipaddress.IPv6Network,
    namespace: str | None = None,
    address4: ipaddress.IPv4Address | None = None,
) -> list[str]:
    """Remove the routes and the addresses; each step on its own, returning what failed."""
    problems: list[str] = []
    try:
        ipr = _netlink(namespace)
    except NetconfError as error:
        return [str(error)]
    with ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            return problems  # the device is gone, and its address and route with it
        index = found[0]
        routed = (network, *((IPV4_NETWORK,) if address4 is not None else ()))
        owned = (address, *((address4,) if address4 is not None else ()))
        steps = [
            *((f"route {net}", functools.partial(
                ipr.route, "del", dst=net.network_address.compressed, dst_len=net.prefixlen, oif=index))
              for net in routed),
            *((f"address {own}", functools.partial(
                ipr.addr, "del", index=index, address=own.compressed, prefixlen=own.max_prefixlen))
              for own in owned),
        ]
        for what, step in steps:
            try:
                step()
            except NetlinkError as error:
                if error.code not in (3, 99):  # ESRCH, EADDRNOTAVAIL: already gone
                    problems.append(f"removing {what}: {error}")
    return problems


def device_exists(interface: str, namespace: str | None = None) -> bool:
    """True if the namespace has a device of this name."""
    with _netlink(namespace) as ipr:
        return bool(ipr.link_lookup(ifname=interface))


def create_namespace(name: str) -> None:
    """Create a network namespace with its loopback up."""
    if namespace_exists(name):
        raise NetconfError(f"network namespace {name!r} already exists")
    netns.create(name)
    with _netlink(name) as ipr:
        ipr.link("set", index=_link_index(ipr, "lo"), state="up")


def remove_namespace(name: str) -> None:
    """Remove a network namespace this program created."""
    if namespace_exists(name):
        netns.remove(name)
