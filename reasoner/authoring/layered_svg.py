"""A small layered diagram layout, drawn as SVG, for diagrams generated from the knowledge base.

Boxes stand in columns (layers) from left to right and arrows point rightwards, as in the
classic layered (Sugiyama) layout, kept simple because the diagrams are small:

1. an arrow that spans several layers passes through an invisible waypoint in each layer
   between, so that it is routed between the boxes there rather than through them;
2. the order within each layer is improved by a few barycentre sweeps (each box moves
   towards the mean position of its neighbours in the layer before, then after), which
   removes most crossings; boxes of one group (an urgency, say) stay together under a
   labelled band, groups in the order given;
3. the tallest layer is stacked from the top; every other layer is placed beside it, each
   box as near as it can get to the mean height of its neighbours towards the tallest
   layer, without overlapping the box above it.

No font metrics are available without a browser, so text is wrapped by an estimate of its
width. Every piece of text is XML-escaped. Nothing here knows the ontology:
``decision_diagram`` says what the boxes and arrows are.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

BOX_WIDTH = 230
LAYER_GAP = 80
PADDING = 8
LINE_HEIGHT = 15
CHAR_WIDTH = 7.0
"""A generous average advance at 12px, so that wrapped lines fit in a wide fallback font."""
BOX_GAP = 10
WAYPOINT_GAP = 6
GROUP_HEAD = 22
MARGIN = 20
TITLE_ROW = 30
SWEEPS = 4


@dataclass(frozen=True)
class Box:
    id: str
    layer: int
    lines: tuple[str, ...]
    """The first line is the box's title (bold); the others are smaller."""
    fill: str = "#eef2f7"
    href: str | None = None
    tooltip: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    colour: str = "#5b6472"
    dashed: bool = False


@dataclass(frozen=True)
class LegendEntry:
    """A box swatch (``fill``) or a line swatch (``colour``, maybe dashed) with its meaning."""

    label: str
    fill: str | None = None
    colour: str | None = None
    dashed: bool = False


@dataclass(frozen=True)
class Diagram:
    title: str
    description: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    layer_titles: dict[int, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    """The order of the groups within a layer."""
    legend: tuple[LegendEntry, ...] = ()


@dataclass
class _Node:
    """A box or an arrow's waypoint, as placed."""

    id: str
    column: int
    lines: list[tuple[str, bool]]
    """Wrapped lines, each with whether it belongs to the title."""
    box: Box | None
    y: float = 0.0

    @property
    def height(self) -> float:
        return 2 * PADDING + LINE_HEIGHT * len(self.lines) if self.box else 0.0

    @property
    def gap(self) -> float:
        return BOX_GAP if self.box else WAYPOINT_GAP

    @property
    def centre(self) -> float:
        return self.y + self.height / 2


def _wrap(lines: tuple[str, ...]) -> list[tuple[str, bool]]:
    width = int((BOX_WIDTH - 2 * PADDING) / CHAR_WIDTH)
    return [(part, i == 0) for i, line in enumerate(lines) for part in textwrap.wrap(line, width) or [""]]


class _Layout:
    def __init__(self, diagram: Diagram):
        self.d = diagram
        boxes = {b.id: b for b in diagram.boxes}
        unknown = {a.source for a in diagram.arrows} | {a.target for a in diagram.arrows}
        if unknown - set(boxes):
            raise ValueError(f"arrows name boxes the diagram lacks: {sorted(unknown - set(boxes))}")
        column_of = {layer: i for i, layer in enumerate(sorted({b.layer for b in diagram.boxes}))}
        self.nodes: dict[str, _Node] = {
            b.id: _Node(b.id, column_of[b.layer], _wrap(b.lines), b) for b in diagram.boxes
        }
        self.columns: dict[int, list[str]] = defaultdict(list)
        """The node ids of each column, top to bottom."""
        for b in diagram.boxes:
            self.columns[column_of[b.layer]].append(b.id)
        self.routes: list[tuple[Arrow, list[str]]] = []
        self.before: dict[str, list[str]] = defaultdict(list)
        self.after: dict[str, list[str]] = defaultdict(list)
        for i, arrow in enumerate(diagram.arrows):
            route = [arrow.source]
            first, last = self.nodes[arrow.source].column, self.nodes[arrow.target].column
            for column in range(first + 1, last):
                waypoint = _Node(f"~{i}:{column}", column, [], None)
                self.nodes[waypoint.id] = waypoint
                self.columns[column].append(waypoint.id)
                route.append(waypoint.id)
            route.append(arrow.target)
            self.routes.append((arrow, route))
            if last > first:
                for a, b in pairwise(route):
                    self.after[a].append(b)
                    self.before[b].append(a)
        self._order()
        self._place()

    # -- order within layers --------------------------------------------------------------
    def _group_rank(self, node_id: str) -> int:
        box = self.nodes[node_id].box
        group = box.group if box else None
        return self.d.groups.index(group) if group in self.d.groups else len(self.d.groups)

    def _sort(self, column: int, neighbours: dict[str, list[str]]) -> None:
        position = {n: i for ids in self.columns.values() for i, n in enumerate(ids)}

        def key(item: tuple[int, str]) -> tuple[int, float]:
            index, node_id = item
            near = neighbours[node_id]
            centre = sum(position[n] for n in near) / len(near) if near else float(index)
            return self._group_rank(node_id), centre

        self.columns[column] = [n for _, n in sorted(enumerate(self.columns[column]), key=key)]

    def _order(self) -> None:
        columns = sorted(self.columns)
        for column in columns:  # groups together from the start
            self._sort(column, defaultdict(list))
        for _ in range(SWEEPS):
            for column in columns[1:]:
                self._sort(column, self.before)
            for column in reversed(columns[:-1]):
                self._sort(column, self.after)

    # -- heights --------------------------------------------------------------------------
    def _space_above(self, column: int, i: int) -> float:
        """The gap above the ``i``-th node of a column, with room for its group's band."""
        ids = self.columns[column]
        node = self.nodes[ids[i]]
        group = node.box.group if node.box else None
        opens = group is not None and (i == 0 or getattr(self.nodes[ids[i - 1]].box, "group", None) != group)
        return (GROUP_HEAD if opens else 0) + (node.gap if i else 0)

    def _stack(self, column: int, wanted: dict[str, float]) -> None:
        """Each node at its wanted centre, or just below the node above it."""
        bottom = MARGIN + TITLE_ROW
        for i, node_id in enumerate(self.columns[column]):
            node = self.nodes[node_id]
            top = bottom + self._space_above(column, i)
            want = wanted.get(node_id)
            node.y = max(top, want - node.height / 2) if want is not None else top
            bottom = node.y + node.height

    def _height(self, column: int) -> float:
        self._stack(column, {})
        last = self.nodes[self.columns[column][-1]]
        return last.y + last.height

    def _place(self) -> None:
        columns = sorted(self.columns)
        anchor = max(columns, key=self._height)
        self._stack(anchor, {})
        for side, neighbours in (
            (columns[columns.index(anchor) + 1 :], self.before),
            (columns[: columns.index(anchor)][::-1], self.after),
        ):
            for column in side:
                wanted = {}
                for node_id in self.columns[column]:
                    near = [self.nodes[n].centre for n in neighbours[node_id]]
                    if near:
                        wanted[node_id] = sum(near) / len(near)
                self._stack(column, wanted)

    # -- drawing --------------------------------------------------------------------------
    @staticmethod
    def x(column: int) -> float:
        return MARGIN + column * (BOX_WIDTH + LAYER_GAP)

    def size(self) -> tuple[float, float]:
        width = self.x(max(self.columns)) + BOX_WIDTH + MARGIN
        bottom = max(n.y + n.height for n in self.nodes.values())
        return width, bottom + MARGIN + (LINE_HEIGHT + 6) * len(self.d.legend)


def _path(layout: _Layout, route: list[str]) -> str:
    nodes = [layout.nodes[n] for n in route]
    first, last = nodes[0], nodes[-1]
    if last.column <= first.column:  # back or within a layer: an arc right of both boxes
        x, end = layout.x(first.column) + BOX_WIDTH, layout.x(last.column) + BOX_WIDTH
        bulge = max(x, end) + LAYER_GAP / 2
        y, end_y = first.centre, last.centre
        return f"M{x},{y:.1f} C{bulge},{y:.1f} {bulge},{end_y:.1f} {end},{end_y:.1f}"
    x, y = layout.x(first.column) + BOX_WIDTH, first.centre
    parts = [f"M{x},{y:.1f}"]
    for node in nodes[1:]:
        nx, ny = layout.x(node.column), node.centre
        mid = (x + nx) / 2
        parts.append(f"C{mid},{y:.1f} {mid},{ny:.1f} {nx},{ny:.1f}")
        x, y = nx, ny
        if node.box is None:  # a waypoint: straight across its column
            x += BOX_WIDTH
            parts.append(f"L{x},{y:.1f}")
    return " ".join(parts)


STYLE = """
.dd text { font: 12px system-ui, sans-serif; fill: #1d2430; }
.dd .dd-title { font-weight: 700; }
.dd .dd-sub { font-size: 11px; fill: #4a5260; }
.dd .dd-layer { font-weight: 700; font-size: 13px; fill: #5b6472; }
.dd .dd-band { fill: #f6f7f9; stroke: #d7dbe2; }
.dd .dd-band-label { font-weight: 700; fill: #5b6472; }
.dd .dd-box { stroke: #7a8494; stroke-width: 1; }
.dd a:hover .dd-box, .dd a:focus .dd-box { stroke: #1f5fa8; stroke-width: 2.5; }
.dd .dd-arrow { fill: none; stroke-width: 1.4; opacity: .75; }
"""


def _marker_id(colours: list[str], colour: str) -> str:
    return f"dd-arrow-{colours.index(colour)}"


def render_svg(diagram: Diagram) -> str:
    """The diagram as one ``<svg>`` element (to inline in HTML, or to write as a file)."""
    layout = _Layout(diagram)
    width, height = layout.size()
    colours = sorted({a.colour for a in diagram.arrows})
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dd" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="dd-title dd-desc">',
        f'<title id="dd-title">{escape(diagram.title)}</title>',
        f'<desc id="dd-desc">{escape(diagram.description)}</desc>',
        f"<style>{STYLE}</style>",
        "<defs>",
        *(
            f'<marker id="{_marker_id(colours, c)}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{escape(c)}"/></marker>'
            for c in colours
        ),
        "</defs>",
    ]
    for layer, title in sorted(diagram.layer_titles.items()):
        column = next((layout.nodes[b.id].column for b in diagram.boxes if b.layer == layer), None)
        if column is not None:
            out.append(
                f'<text class="dd-layer" x="{layout.x(column)}" y="{MARGIN + 12}">{escape(title)}</text>'
            )
    out += _bands(layout)
    for arrow, route in layout.routes:
        dash = ' stroke-dasharray="6 4"' if arrow.dashed else ""
        out.append(
            f'<path class="dd-arrow" d="{_path(layout, route)}" stroke="{escape(arrow.colour)}"{dash} '
            f'marker-end="url(#{_marker_id(colours, arrow.colour)})"/>'
        )
    out += [_box(layout.nodes[b.id], layout.x(layout.nodes[b.id].column)) for b in diagram.boxes]
    out += _legend(diagram, height)
    out.append("</svg>")
    return "\n".join(out)


def _bands(layout: _Layout) -> list[str]:
    drawn = []
    for column, ids in sorted(layout.columns.items()):
        members: dict[str, list[_Node]] = defaultdict(list)
        for node_id in ids:
            node = layout.nodes[node_id]
            if node.box and node.box.group:
                members[node.box.group].append(node)
        for group, nodes in members.items():
            top = min(n.y for n in nodes) - GROUP_HEAD + 2
            bottom = max(n.y + n.height for n in nodes) + 6
            x = layout.x(column) - 8
            drawn.append(
                f'<rect class="dd-band" x="{x}" y="{top:.1f}" width="{BOX_WIDTH + 16}" '
                f'height="{bottom - top:.1f}" rx="8"/>'
                f'<text class="dd-band-label" x="{x + 8}" y="{top + 15:.1f}">{escape(group)}</text>'
            )
    return drawn


def _box(node: _Node, x: float) -> str:
    box = node.box
    assert box is not None
    spans = []
    for i, (text, title) in enumerate(node.lines):
        y = node.y + PADDING + LINE_HEIGHT * i + 11
        css = "dd-title" if title else "dd-sub"
        spans.append(f'<text class="{css}" x="{x + PADDING}" y="{y:.1f}">{escape(text)}</text>')
    tooltip = f"<title>{escape(box.tooltip)}</title>" if box.tooltip else ""
    body = (
        f'<g>{tooltip}<rect class="dd-box" x="{x}" y="{node.y:.1f}" width="{BOX_WIDTH}" '
        f'height="{node.height:.1f}" rx="6" fill="{escape(box.fill)}"/>{"".join(spans)}</g>'
    )
    return f'<a href="{escape(box.href)}">{body}</a>' if box.href else body


def _legend(diagram: Diagram, height: float) -> list[str]:
    drawn = []
    y = height - MARGIN - (LINE_HEIGHT + 6) * len(diagram.legend) + 4
    for entry in diagram.legend:
        if entry.fill:
            drawn.append(
                f'<rect x="{MARGIN}" y="{y:.1f}" width="26" height="13" rx="3" fill="{escape(entry.fill)}" '
                'stroke="#7a8494"/>'
            )
        else:
            dash = ' stroke-dasharray="6 4"' if entry.dashed else ""
            drawn.append(
                f'<path d="M{MARGIN},{y + 6.5:.1f} h26" stroke="{escape(entry.colour or "#5b6472")}" '
                f'stroke-width="2"{dash}/>'
            )
        drawn.append(f'<text x="{MARGIN + 36}" y="{y + 11:.1f}">{escape(entry.label)}</text>')
        y += LINE_HEIGHT + 6
    return drawn
