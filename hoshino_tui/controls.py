"""The small interface the dashboard needs from a running node, so tests can stand in for one."""

from __future__ import annotations

import ipaddress
from typing import Protocol

from agent.recent import CarriedObject


class NodeControl(Protocol):
    """What agent.node.Node offers the dashboard: lifecycle and heartbeat controls, all thread-safe."""

    @property
    def address(self) -> ipaddress.IPv6Address: ...

    @property
    def interval(self) -> float: ...

    @property
    def manual(self) -> bool: ...

    def start(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def stop(self) -> None: ...

    def faster(self) -> None: ...

    def slower(self) -> None: ...

    def automatic(self) -> None: ...

    def hold(self, interval: float) -> None:
        """Hold the heartbeat at interval seconds until automatic()."""
        ...

    def recent_objects(self) -> list[CarriedObject]:
        """The objects the node recently sent and received, oldest first."""
        ...
