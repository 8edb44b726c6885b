"""The TUN device: open it (in a namespace if asked), read packets from it, write packets to it."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct

from agent.config import MAX_INTERFACE_NAME
from agent.netconf import NetconfError, inside

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TUN_PATH = "/dev/net/tun"
READ_BATCH = 64
"""The most packets one read() returns: what a busy device has waiting is taken in one go."""


class Tun:
    """An open TUN device without packet information headers; reads wake up on close()."""

    def __init__(self, name: str, netns: str | None = None) -> None:
        self.name = name
        self.netns = netns
        self.fd = self._open()
        os.set_blocking(self.fd, False)  # reads take what is waiting; writes never wait on a TUN device
        self._wake_read, self._wake_write = os.pipe()
        self.closed = False

    def _open(self) -> int:
        if len(self.name.encode()) > MAX_INTERFACE_NAME:
            # The kernel would cut the name short and the device would not be found by its full name.
            raise NetconfError(f"device name {self.name!r} is {len(self.name.encode())} bytes long: "
                               f"Linux allows at most {MAX_INTERFACE_NAME}; pass a shorter --interface")
        with inside(self.netns):
            try:
                fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                raise NetconfError(f"no {TUN_PATH}: load the tun module (modprobe tun)") from None
            except PermissionError:
                raise NetconfError(
                    f"cannot open {TUN_PATH}: permission denied: run as root, or give this user access to it"
                ) from None
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", self.name.encode(), IFF_TUN | IFF_NO_PI))
            except OSError as error:
                os.close(fd)
                if error.errno == errno.EPERM:
                    raise NetconfError("creating a TUN device needs CAP_NET_ADMIN: run as root") from None
                if error.errno == errno.EBUSY:
                    raise NetconfError(
                        f"device {self.name} is in use by another program (another hoshino-agent?): stop it, "
                        f"or pass another --interface or --netns") from None
                raise NetconfError(f"cannot create TUN device {self.name}: {error.strerror}") from None
        return fd

    def read(self, size: int, most: int = READ_BATCH) -> list[bytes] | None:
        """The packets waiting, at least one and at most `most`, or None once the device is closed.

        Under load a read finds the next packet already there: only an empty device is waited on."""
        while not self.closed:
            ready, _, _ = select.select([self.fd, self._wake_read], [], [])
            if self._wake_read in ready:
                return None
            packets: list[bytes] = []
            try:
                while len(packets) < most:
                    packets.append(os.read(self.fd, size))
            except BlockingIOError:
                pass
            except OSError as error:
                if error.errno not in (errno.EBADF, errno.EINTR):
                    raise
                return packets or None
            if packets:
                return packets
        return None

    def write(self, packet: bytes) -> None:
        """Hand a packet to the kernel."""
        os.write(self.fd, packet)

    def stop_reading(self) -> None:
        """Make read() return None in whichever thread waits in it."""
        if not self.closed:
            self.closed = True
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        """Close the device (the kernel removes a non-persistent TUN); readers must have stopped."""
        if self.fd < 0:
            return
        self.stop_reading()
        os.close(self.fd)
        self.fd = -1
        os.close(self._wake_read)
        os.close(self._wake_write)

    def __enter__(self) -> Tun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
