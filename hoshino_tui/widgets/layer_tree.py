"""The decoded structure of an object's packets: layers, then fields, each tied to its bytes."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from agent.dissect import Dissection

from .. import formatting


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes offset..offset+length of packet number index in the object."""

    index: int
    offset: int
    length: int


class LayerTree(Tree[Span]):
    """One branch per packet (a bundle holds several), layers below it, fields below those."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("packets", id=id)
        self.show_root = False
        self.guide_depth = 3

    def show(self, dissections: list[Dissection], note: str = "") -> None:
        """Replace the tree with these packets; note (the object's format) goes on top."""
        self.clear()
        if note:
            self.root.add_leaf(Text(note, style="dim"))
        many = len(dissections) > 1
        for index, dissection in enumerate(dissections):
            parent: TreeNode[Span] = self.root
            if many:
                label = Text.assemble((f"Packet {index + 1} of {len(dissections)}", "bold"),
                                      f"  {dissection.summary}  ({formatting.plural(len(dissection.packet), 'byte')})")
                parent = self.root.add(label, Span(index, 0, len(dissection.packet)), expand=True)
            for problem in dissection.problems:
                parent.add_leaf(Text(f"! {problem}", style="bold red"), Span(index, 0, 0))
            for layer in dissection.layers:
                label = Text.assemble((layer.name, "bold"), "  ", (layer.summary, "italic"))
                branch = parent.add(label, Span(index, layer.offset, layer.length), expand=True)
                for field in layer.fields:
                    branch.add_leaf(Text.assemble((f"{field.name}: ", "cyan"), field.text),
                                    Span(index, field.offset, field.length))
        self.root.expand()
        self.move_cursor(None)

    def first_span(self) -> Span | None:
        """The span of the highlighted node, if any."""
        node = self.cursor_node
        return node.data if node is not None else None
