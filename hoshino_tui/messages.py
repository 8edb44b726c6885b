"""Messages the app's workers post to the UI thread: facts, named in the past tense."""

from __future__ import annotations

from textual.message import Message

from agent.events import NodeStarted, NodeStopped, Notice, PacketSeen
from agent.scrape import NodeReport, ScrapeError
from agent.status import Probed

from .bucket import BucketObject
from .controls import NodeControl
from .network import InboxLine
from .sampler import StatsView


class AgentCreated(Message):
    """The node object exists; its controls can be used once it has started."""

    def __init__(self, node: NodeControl) -> None:
        super().__init__()
        self.node = node


class AgentStarted(Message):
    """The node reported that it is up."""

    def __init__(self, event: NodeStarted) -> None:
        super().__init__()
        self.event = event


class AgentFailed(Message):
    """The node could not be created or started; message says what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class AgentStopped(Message):
    """The node has stopped (error set when it failed while running)."""

    def __init__(self, event: NodeStopped) -> None:
        super().__init__()
        self.event = event


class ViewPaused(Message):
    """The packet table was paused or resumed (p): a replay's playback pauses with it."""

    def __init__(self, paused: bool) -> None:
        super().__init__()
        self.paused = paused


class StatsUpdated(Message):
    """New counter rates; a newer one supersedes any still waiting to be drawn."""

    def __init__(self, view: StatsView, oldest: float) -> None:
        super().__init__()
        self.view = view
        self.oldest = oldest
        """Time of the oldest snapshot folded into this view."""

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, StatsUpdated):
            message.oldest = min(message.oldest, self.oldest)
            return True
        return False


class PacketsSeen(Message):
    """A batch of packet summaries, oldest first."""

    def __init__(self, packets: tuple[PacketSeen, ...]) -> None:
        super().__init__()
        self.packets = packets


class NoticePosted(Message):
    """The agent has something for a person to read."""

    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice


class ObjectsListed(Message):
    """The inspector's listing of the bucket is done."""

    def __init__(self, objects: tuple[BucketObject, ...]) -> None:
        super().__init__()
        self.objects = objects


class ObjectFetched(Message):
    """An object's body has been read; None when it was delivered and deleted before it could be."""

    def __init__(self, obj: BucketObject, body: bytes | None) -> None:
        super().__init__()
        self.obj = obj
        self.body = body


class BucketFailed(Message):
    """Listing or reading the bucket failed; message is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class PcapWritten(Message):
    """Objects were written to a pcap file (path empty when none had a packet); skipped counts the rest by reason."""

    def __init__(self, path: str, objects: int, packets: int, skipped: dict[str, int] | None = None) -> None:
        super().__init__()
        self.path = path
        self.objects = objects
        self.packets = packets
        self.skipped = skipped or {}


class InboxesListed(Message):
    """The network screen's listing of the whole bucket, by inbox, or why it could not be listed."""

    def __init__(self, inboxes: list[InboxLine] | str) -> None:
        super().__init__()
        self.inboxes = inboxes

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InboxesListed)


class NetworkRead(Message):
    """This node's metrics page and its peers' were read (local is the error when its own did not answer);
    a newer reading supersedes one still waiting to be drawn."""

    def __init__(self, local: NodeReport | ScrapeError, probed: dict[str, Probed]) -> None:
        super().__init__()
        self.local = local
        self.probed = probed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NetworkRead)
