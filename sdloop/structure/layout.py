"""Lay out a stock-and-flow diagram: the one layout that ``sdloop sketch`` and ``sdloop
diagram`` write.

Stocks joined by flows form a *unit*: their boxes in a row in flow order, each flow's valve
on a straight pipe between its ends (clouds where a flow leaves or enters the model), a
stock's further cloud flows on vertical pipes above and below it. Units and the other
variables (auxiliaries, constants, lookups, shadows of variables from other views) are then
placed by grandalf's layered (Sugiyama) layout of the causal links, each connected part of
the view on its own, and the parts packed in rows. Coordinates are Vensim's pixels, y down.
"""

from __future__ import annotations

import textwrap

import numpy as np
from dataclasses import dataclass, field

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from sdloop.lang.sketch import Arrow, Element, View
from sdloop.structure.stockflow import StockFlow

STOCK = (40.0, 20.0)   # half width, half height of a stock's box
VALVE = (6.0, 8.0)
CLOUD = (10.0, 8.0)
WRAP = 16              # characters per line of a name
CHAR_W, LINE_H = 5.6, 13.0
ROW_WIDTH = 850.0      # parts of a view are packed into rows about this wide
SPACE = (36.0, 44.0)   # horizontal and vertical room between laid-out nodes


def label_box(name: str) -> tuple[tuple[str, ...], float, float]:
    """A name wrapped as Vensim shows it, and the half width and half height it takes."""
    lines = tuple(textwrap.wrap(name, WRAP, break_long_words=False)) or (name,)
    return lines, max(18.0, max(len(line) for line in lines) * CHAR_W / 2 + 4), LINE_H * len(lines) / 2 + 3


@dataclass
class _Unit:
    """Stocks joined by flows, laid out around (0, 0): name -> element, and the pipes."""

    elements: dict[str, Element] = field(default_factory=dict)
    pipes: list[tuple[str, str, str]] = field(default_factory=list)   # (valve key, end key, role)

    def bounds(self) -> tuple[float, float, float, float]:
        return View("", list(self.elements.values())).bounds()


def _element(key: str, kind: str, name: str, x: float, y: float) -> Element:
    if kind == "stock":
        lines, w, h = label_box(name)
        return Element(0, kind, name, x, y, max(STOCK[0], w * 1.1 + 4), max(STOCK[1], h + 6), lines=lines)
    if kind in ("valve", "cloud"):
        return Element(0, kind, "", x, y, *(VALVE if kind == "valve" else CLOUD))
    lines, w, h = label_box(f"<{name}>" if kind == "shadow" else name)
    return Element(0, kind, name, x, y, w, h, lines=lines)


def _unit(sf: StockFlow, stocks: list[str], flows: list[str]) -> _Unit:
    """Geometry of one unit around (0, 0)."""
    unit = _Unit()
    inside = set(stocks)
    between = {f: sf.pipes[f] for f in flows
               if sf.pipes[f].source in inside and sf.pipes[f].target in inside}
    row = _flow_order(stocks, between.values())
    half = {stock: _element(stock, "stock", stock, 0, 0).w for stock in row}
    x = 0.0
    joined: set[str] = set()
    left_taken: set[str] = set()
    right_taken: set[str] = set()
    for i, stock in enumerate(row):
        if i:
            pair = {row[i - 1], stock}
            link = next((f for f, p in between.items() if {p.source, p.target} == pair and f not in joined), None)
            if link is None:
                x += half[row[i - 1]] + half[stock] + 2 * SPACE[0]
            else:
                joined.add(link)
                left_taken.add(stock)
                right_taken.add(row[i - 1])
                _, w, _ = label_box(link)
                reach = max(46.0, w + 10)
                _place_flow(unit, link, x + half[row[i - 1]] + reach, 0.0, "h")
                unit.pipes += [(link, between[link].source, "drains"), (link, between[link].target, "fills")]
                x += half[row[i - 1]] + 2 * reach + half[stock]
        unit.elements[stock] = _element(stock, "stock", stock, x, 0.0)
    for flow, pipe in between.items():
        if flow not in joined:   # not between neighbours: valve below the row, pipes slanted
            a, b = unit.elements[pipe.source], unit.elements[pipe.target]
            _place_flow(unit, flow, (a.x + b.x) / 2, STOCK[1] + 70, "v")
            unit.pipes += [(flow, pipe.source, "drains"), (flow, pipe.target, "fills")]
    others = [f for f in flows if f not in between]
    for stock in row:
        _cloud_flows(sf, unit, stock, others, stock not in left_taken, stock not in right_taken)
    for flow in others:   # flows with no stock in this view: cloud to cloud
        if sf.pipes[flow].source not in inside and sf.pipes[flow].target not in inside:
            _place_flow(unit, flow, 0.0, 0.0, "h")
            for dx, role in ((-56.0, "drains"), (56.0, "fills")):
                unit.elements[f"{flow}/{role}"] = _element("", "cloud", "", dx, 0.0)
                unit.pipes.append((flow, f"{flow}/{role}", role))
    return unit


def _flow_order(stocks: list[str], pipes) -> list[str]:
    """Stocks in the order their flows run (file order where flows do not decide)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(stocks)
    graph.add_edges_from((p.source, p.target) for p in pipes)
    graph.remove_edges_from([e for e in graph.edges if graph.has_edge(e[1], e[0]) and stocks.index(e[0]) > stocks.index(e[1])])
    try:
        return list(nx.lexicographical_topological_sort(graph, key=stocks.index))
    except nx.NetworkXUnfeasible:
        return list(stocks)


def _place_flow(unit: _Unit, flow: str, x: float, y: float, direction: str, side: int = 1) -> None:
    """A valve at (x, y) and the flow's name under it (``h``) or beside it (``v``)."""
    unit.elements[f"{flow}/valve"] = _element("", "valve", "", x, y)
    label = _element(flow, "flow", flow, x, y)
    if direction == "h":
        label.y = y + VALVE[1] + label.h + 2
    else:
        label.x = x + side * (VALVE[0] + label.w + 4)
    unit.elements[flow] = label


def _cloud_flows(sf: StockFlow, unit: _Unit, stock: str, flows: list[str], left: bool, right: bool) -> None:
    """Flows between ``stock`` and a cloud: left and right if free, then above and below."""
    s = unit.elements[stock]
    ins = [f for f in flows if sf.pipes[f].target == stock]
    outs = [f for f in flows if sf.pipes[f].source == stock]
    above: list[tuple[str, str]] = []
    below: list[tuple[str, str]] = []
    for flow, role, free, sign in [(f, "fills", left, -1) for f in ins[:1]] + [(f, "drains", right, 1) for f in outs[:1]]:
        if not free:
            (above if role == "fills" else below).append((flow, role))
            continue
        _, w, _ = label_box(flow)
        reach = max(46.0, w + 10)
        valve_x = s.x + sign * (s.w + reach)
        _place_flow(unit, flow, valve_x, s.y, "h")
        cloud = f"{flow}/cloud"
        unit.elements[cloud] = _element("", "cloud", "", valve_x + sign * 50, s.y)
        unit.pipes += [(flow, cloud, "drains" if role == "fills" else "fills"), (flow, stock, role)]
    above += [(f, "fills") for f in ins[1:]]
    below += [(f, "drains") for f in outs[1:]]
    for group, sign in ((above, -1), (below, 1)):
        spread = s.w * 0.55
        offsets = [0.0] if len(group) == 1 else [-spread + 2 * spread * i / (len(group) - 1) for i in range(len(group))]
        for (flow, role), dx in zip(group, offsets):
            valve_y = s.y + sign * (s.h + 40)
            _place_flow(unit, flow, s.x + dx, valve_y, "v", side=-1 if dx < 0 else 1)
            cloud = f"{flow}/cloud"
            unit.elements[cloud] = _element("", "cloud", "", s.x + dx, valve_y + sign * 40)
            unit.pipes += [(flow, cloud, "drains" if role == "fills" else "fills"), (flow, stock, role)]


class _Box:
    """What grandalf needs of a vertex: its size and, after layout, its center."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


def _units(sf: StockFlow, members: list[str]) -> list[tuple[list[str], list[str]]]:
    """Stocks and flows of ``members`` grouped into units (stocks joined by flows)."""
    import networkx as nx

    graph = nx.Graph()
    inside = set(members)
    for name in members:
        if sf.kinds[name] in ("stock", "flow"):
            graph.add_node(name)
    for flow in (m for m in members if sf.kinds[m] == "flow"):
        for stock in (sf.pipes[flow].source, sf.pipes[flow].target):
            if stock in inside:
                graph.add_edge(flow, stock)
    order = {name: i for i, name in enumerate(members)}
    parts = sorted((sorted(c, key=order.get) for c in nx.connected_components(graph)), key=lambda c: order[c[0]])
    return [([n for n in c if sf.kinds[n] == "stock"], [n for n in c if sf.kinds[n] == "flow"]) for c in parts]


SATELLITES = frozenset({"constant", "lookup", "shadow"})


def layout_view(sf: StockFlow, members: list[str], name: str, *, shadows: bool = True,
                constants: bool = True) -> View:
    """A view holding ``members`` (and, with ``shadows``, shadows of the variables outside
    it that their equations use), laid out. ``constants=False`` leaves constants out.

    Units and auxiliaries go through the layered layout; constants, lookups and shadows (which
    only feed others) are then set next to the first variable they feed, where they overlap
    nothing.
    """
    if not constants:
        members = [m for m in members if sf.kinds[m] != "constant"]
    inside = set(members)
    nodes: dict[str, tuple[_Unit | Element, str]] = {}   # vertex key -> (unit or element, kind)
    owner: dict[str, str] = {}                           # variable -> vertex key
    for stocks, flows in _units(sf, members):
        key = "unit:" + (stocks or flows)[0]
        nodes[key] = (_unit(sf, stocks, flows), "unit")
        owner.update({n: key for n in stocks + flows})
    links = [(s, t) for s, t in sf.links if t in inside and (s in inside or shadows)
             and (constants or sf.kinds[s] != "constant")]
    satellites: dict[str, Element] = {}
    for member in [m for m in members if m not in owner] + [s for s, _ in links if s not in inside]:
        kind = sf.kinds[member] if member in inside else "shadow"
        element = _element(member, kind, member, 0, 0)
        if kind in SATELLITES:
            satellites.setdefault(member, element)
        else:
            nodes[member] = (element, "node")
            owner[member] = member
    centers = _place(nodes, {(owner[s], owner[t]) for s, t in links if s in owner and owner[s] != owner[t]})
    view, by_key = _assemble(name, nodes, centers)
    for key, element in satellites.items():
        consumers = [by_key[t] for s, t in links if s == key and t in by_key]
        _set_beside(view, element, consumers)
        element.id = len(view.elements) + 1
        view.elements.append(element)
        by_key[key] = element
    _shift(view, 30.0)
    for source, target in links:
        view.arrows.append(Arrow(0, by_key[source].id, by_key[target].id))
    for i, arrow in enumerate(view.arrows):
        arrow.id = len(view.elements) + i + 1
    return view


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _set_beside(view: View, element: Element, consumers: list[Element]) -> None:
    """Put ``element`` at the nearest free spot around its first consumer (near its centroid
    when it feeds several); below the view when there is no consumer."""
    if not consumers:
        x0, y0, x1, y1 = view.bounds() if view.elements else (0, 0, 0, 0)
        element.x, element.y = x0 + element.w, y1 + SPACE[1] + element.h
        return
    cx = sum(c.x for c in consumers) / len(consumers)
    cy = sum(c.y for c in consumers) / len(consumers)
    anchor = consumers[0]
    gap = 8.0
    obstacles = [(e.x - e.w - gap, e.y - e.h - gap, e.x + e.w + gap, e.y + e.h + gap) for e in view.elements]
    for ring in range(1, 40):
        best = None
        for angle in range(0, 360, 15):
            rad = np.radians(angle)
            dx = np.cos(rad) * (anchor.w + element.w + 18 * ring)
            dy = -np.sin(rad) * (anchor.h + element.h + 16 * ring)
            x, y = anchor.x + dx, anchor.y + dy
            box = (x - element.w, y - element.h, x + element.w, y + element.h)
            if any(_overlaps(box, o) for o in obstacles):
                continue
            score = np.hypot(x - cx, y - cy) + (0 if dy < 0 else 6)   # prefer above, nearer the consumers
            if best is None or score < best[0]:
                best = (score, x, y)
        if best is not None:
            element.x, element.y = best[1], best[2]
            return
    element.x, element.y = anchor.x, anchor.y + anchor.h + element.h + 40 * 18


def free_spot(view: View, x: float, y: float, w: float, h: float,
              taken: list[tuple[float, float, float, float]] = ()) -> tuple[float, float]:
    """The point nearest (x, y) where a ``2w`` x ``2h`` box overlaps no element of ``view``
    and no box in ``taken`` (x0, y0, x1, y1)."""
    obstacles = [(e.x - e.w - 3, e.y - e.h - 3, e.x + e.w + 3, e.y + e.h + 3) for e in view.elements]
    obstacles += list(taken)
    for radius in range(0, 600, 6):
        for angle in range(0, 360, 20 if radius else 360):
            cx, cy = x + radius * np.cos(np.radians(angle)), y + radius * np.sin(np.radians(angle))
            if not any(_overlaps((cx - w, cy - h, cx + w, cy + h), o) for o in obstacles):
                return cx, cy
    return x, y


def _shift(view: View, margin: float) -> None:
    x0, y0, _, _ = view.bounds()
    for e in view.elements:
        e.x += margin - x0
        e.y += margin - y0


def _size(item) -> tuple[float, float]:
    if isinstance(item, _Unit):
        x0, y0, x1, y1 = item.bounds()
        return x1 - x0, y1 - y0
    return 2 * item.w, 2 * item.h


def _place(nodes: dict, edges: set[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Center of every node: a layered layout of each connected part, parts packed in rows."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    order = list(nodes)
    parts = []
    for component in sorted(nx.connected_components(graph), key=lambda c: min(map(order.index, c))):
        keys = sorted(component, key=order.index)
        sizes = {k: _size(nodes[k][0]) for k in keys}
        centers = _layered(keys, sorted((a, b) for a, b in edges if a in component), sizes)
        x0 = min(centers[k][0] - sizes[k][0] / 2 for k in keys)
        y0 = min(centers[k][1] - sizes[k][1] / 2 for k in keys)
        x1 = max(centers[k][0] + sizes[k][0] / 2 for k in keys)
        y1 = max(centers[k][1] + sizes[k][1] / 2 for k in keys)
        parts.append(({k: (centers[k][0] - x0, centers[k][1] - y0) for k in keys}, x1 - x0 + SPACE[0],
                      y1 - y0 + SPACE[1]))
    parts.sort(key=lambda p: -p[1] * p[2])
    placed: dict[str, tuple[float, float]] = {}
    x = y = row_height = 0.0
    for centers, w, h in parts:
        if x > 0 and x + w > ROW_WIDTH:
            x, y, row_height = 0.0, y + row_height, 0.0
        placed.update({k: (cx + x, cy + y) for k, (cx, cy) in centers.items()})
        x += w
        row_height = max(row_height, h)
    return placed


def _layered(keys: list[str], edges: list[tuple[str, str]], sizes: dict) -> dict[str, tuple[float, float]]:
    """grandalf's Sugiyama layout of one connected part, top to bottom, fitted to ROW_WIDTH.

    grandalf ranks the nodes into layers and orders each layer to cut crossings; its x
    positions are then scaled to fit ROW_WIDTH, overlaps pushed apart, and a layer too wide
    for a row wraps onto the next.
    """
    vertices = {k: Vertex(k) for k in keys}
    for k, v in vertices.items():
        v.view = _Box(sizes[k][0] + SPACE[0], sizes[k][1] + SPACE[1] / 2)
    graph = Graph(list(vertices.values()), [Edge(vertices[a], vertices[b]) for a, b in edges])
    sugiyama = SugiyamaLayout(graph.C[0])
    sugiyama.xspace, sugiyama.yspace = 0, SPACE[1] / 2
    sugiyama.init_all(optimize=True)
    sugiyama.draw(3)
    xy = {k: v.view.xy for k, v in vertices.items()}
    width = {k: v.view.w for k, v in vertices.items()}
    left = min(xy[k][0] - width[k] / 2 for k in keys)
    right = max(xy[k][0] + width[k] / 2 for k in keys)
    scale = min(1.0, ROW_WIDTH / (right - left))
    layers: dict[float, list[str]] = {}
    for k in keys:
        layers.setdefault(round(xy[k][1], 3), []).append(k)
    centers: dict[str, tuple[float, float]] = {}
    y = 0.0
    for _, layer in sorted(layers.items()):
        layer.sort(key=lambda k: xy[k][0])
        rows, used = [[]], 0.0
        for k in layer:
            if rows[-1] and used + width[k] > ROW_WIDTH:
                rows.append([])
                used = 0.0
            rows[-1].append(k)
            used += width[k]
        for row in rows:
            xs = [(xy[k][0] - left) * scale for k in row]
            for n in range(1, len(row)):
                xs[n] = max(xs[n], xs[n - 1] + (width[row[n - 1]] + width[row[n]]) / 2)
            xs[-1] = min(xs[-1], max(ROW_WIDTH - width[row[-1]] / 2, width[row[-1]] / 2))
            for n in range(len(row) - 2, -1, -1):
                xs[n] = min(xs[n], xs[n + 1] - (width[row[n]] + width[row[n + 1]]) / 2)
            height = max(vertices[k].view.h for k in row)
            centers.update({k: (x, y + height / 2) for k, x in zip(row, xs)})
            y += height + SPACE[1] / 2
    return centers


def _assemble(name: str, nodes: dict, centers: dict) -> tuple[View, dict[str, Element]]:
    """Number the elements of the laid-out nodes, put them at their centers, add the pipes."""
    view = View(name)
    by_key: dict[str, Element] = {}

    def add(key: str, element: Element, cx: float, cy: float) -> None:
        element.id = len(view.elements) + 1
        element.x += cx
        element.y += cy
        view.elements.append(element)
        by_key[key] = element

    for key, (item, kind) in nodes.items():
        cx, cy = centers[key]
        if kind == "node":
            add(key, item, cx, cy)
            continue
        x0, y0, x1, y1 = item.bounds()
        cx, cy = cx - (x0 + x1) / 2, cy - (y0 + y1) / 2
        valves = [k for k in item.elements if k.endswith("/valve")]
        for k, element in item.elements.items():
            if k not in valves and k + "/valve" not in valves:
                add(k, element, cx, cy)
        for valve in valves:   # each valve right before its flow's name, as Vensim writes them
            add(valve, item.elements[valve], cx, cy)
            flow = valve[: -len("/valve")]
            add(flow, item.elements[flow], cx, cy)
        for flow, end, role in item.pipes:
            view.arrows.append(Arrow(0, by_key[flow + "/valve"].id, by_key[end].id, pipe=True,
                                     head=role == "fills"))
    return view, by_key


def layout(sf: StockFlow, *, constants: bool = True) -> list[View]:
    """One laid-out view per group of the model (its variables and shadows of the rest)."""
    views = [layout_view(sf, sf.members(group), group, constants=constants) for group in sf.group_names()]
    return [view for view in views if view.elements]
