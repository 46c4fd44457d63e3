"""Vensim sketch sections: the diagram records at the end of a ``.mdl`` file.

A sketch follows the equations. Each view starts with the marker line and a version line,
then the view's name, its default font, and one record per object::

    \\\\\\---/// Sketch information - do not modify anything except names
    V300  Do not put anything below this section - it will be ignored
    *View 1
    $192-192-192,0,Times New Roman|12||0-0-0|0-0-0|0-0-255|-1--1--1|-1--1--1|96,96,100,0
    10,1,Teacup Temperature,307,224,40,20,3,3,0,0,0,0,0,0      variable: id,name,x,y,half w,half h,shape,bits,...
    12,2,48,605,221,10,8,0,3,0,0,-1,0,0,0                      cloud
    11,5,48,473,221,6,8,34,3,0,0,1,0,0,0                       valve (its flow's variable record follows it)
    10,6,Heat Loss to Room,473,248,49,19,40,3,0,0,-1,0,0,0     the flow's name, attached to the valve
    1,3,5,2,4,0,0,22,0,0,0,-1--1--1,,1|(557,221)|              arrow: id,from,to,shape,...,thickness 22 = pipe
    1,9,8,6,0,0,0,0,0,64,0,-1--1--1,,1|(400,290)|              arrow: a causal link through one point
    ///---\\\\\\

Variable shapes: 3 a stock's box, 8 a name without a box, 40 a flow's name on its valve;
bits 3 a variable's own record, 2 a shadow (a variable of another view, shown as
``<name>``). Pipe arrows run from the valve to each end: shape 4 (an arrowhead) at the end
the flow fills, 100 at the end it drains. This is the layout Vensim writes and PySD's
sketch grammar (``pysd/translators/vensim/parsing_grammars/sketch.peg``) reads.

``View``, ``Element`` and ``Arrow`` hold a laid-out diagram (coordinates in Vensim's
pixels, y down); ``sketch_text(views)`` writes them, ``with_sketch(text, sketch)`` puts a
sketch in a model file's text (everything before the old sketch kept byte for byte) and
``read_sketch(text)`` reads one back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = "\\\\\\---/// Sketch information - do not modify anything except names"
VERSION = "V300  Do not put anything below this section - it will be ignored"
FONT = "$192-192-192,0,Times New Roman|12||0-0-0|0-0-0|0-0-255|-1--1--1|-1--1--1|96,96,100,0"
END = "///---\\\\\\"
SKETCH_START = re.compile(r"\\{2,3}---///")
CLOUD_NAME = "48"
# shape, bits and text position of each kind of variable record
_VARIABLE = {"stock": (3, 3, 0), "flow": (40, 3, -1), "shadow": (8, 2, 0)}
_NAMED = (8, 3, 0)


@dataclass
class Element:
    """A variable, valve or cloud of a view: center ``x, y`` and half sizes ``w, h``.

    ``kind`` is stock, flow (a flow's name, next to its valve), auxiliary, constant,
    lookup, shadow, valve or cloud. ``lines`` is the name as drawn, wrapped.
    """

    id: int
    kind: str
    name: str
    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...] = ()


@dataclass
class Arrow:
    """A causal link (``pipe=False``) or half a flow's pipe, valve to one end.

    ``head`` draws an arrowhead at the target; ``points`` are the line's inner points.
    """

    id: int
    source: int
    target: int
    pipe: bool = False
    head: bool = True
    points: tuple[tuple[float, float], ...] = ()


@dataclass
class View:
    """One view of a sketch: its name, elements and arrows (ids unique in the view)."""

    name: str
    elements: list[Element] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)

    def element(self, id_: int) -> Element:
        return next(e for e in self.elements if e.id == id_)

    def bounds(self) -> tuple[float, float, float, float]:
        """Smallest ``(x0, y0, x1, y1)`` holding every element."""
        return (min(e.x - e.w for e in self.elements), min(e.y - e.h for e in self.elements),
                max(e.x + e.w for e in self.elements), max(e.y + e.h for e in self.elements))


def _i(value: float) -> int:
    return int(round(value))


def _element_record(e: Element) -> str:
    geometry = f"{_i(e.x)},{_i(e.y)},{_i(e.w)},{_i(e.h)}"
    if e.kind == "valve":
        return f"11,{e.id},{CLOUD_NAME},{geometry},34,3,0,0,1,0,0,0"
    if e.kind == "cloud":
        return f"12,{e.id},{CLOUD_NAME},{geometry},0,3,0,0,-1,0,0,0"
    shape, bits, textpos = _VARIABLE.get(e.kind, _NAMED)
    return f"10,{e.id},{e.name},{geometry},{shape},{bits},0,0,{textpos},0,0,0"


def _arrow_record(a: Arrow, view: View) -> str:
    points = a.points or (_midpoint(view.element(a.source), view.element(a.target)),)
    where = "".join(f"|({_i(x)},{_i(y)})" for x, y in points) + "|"
    if a.pipe:
        return f"1,{a.id},{a.source},{a.target},{4 if a.head else 100},0,0,22,0,0,0,-1--1--1,,{len(points)}{where}"
    return f"1,{a.id},{a.source},{a.target},0,0,0,0,0,64,0,-1--1--1,,{len(points)}{where}"


def _midpoint(a: Element, b: Element) -> tuple[float, float]:
    return (a.x + b.x) / 2, (a.y + b.y) / 2


def sketch_text(views: list[View], newline: str = "\n") -> str:
    """The sketch section for ``views``, from the first marker to the closing ``///---\\\\\\``."""
    lines: list[str] = []
    for view in views:
        lines += [MARKER, VERSION, f"*{view.name}", FONT]
        records = [(e.id, _element_record(e)) for e in view.elements]
        records += [(a.id, _arrow_record(a, view)) for a in view.arrows]
        lines += [record for _, record in sorted(records)]
    lines.append(END)
    return newline.join(lines) + newline


def split_sketch(text: str) -> tuple[str, str, str]:
    """``(equations, sketch, rest)``: the text before the sketch, the sketch (up to and
    including ``///---\\\\\\``) and what follows it (Vensim's settings); empty when absent."""
    start = SKETCH_START.search(text)
    if start is None:
        return text, "", ""
    end = text.find(END, start.end())
    if end < 0:
        return text[:start.start()], text[start.start():], ""
    end += len(END)
    if text.startswith("\r\n", end):
        end += 2
    elif text.startswith("\n", end):
        end += 1
    return text[:start.start()], text[start.start():end], text[end:]


def with_sketch(text: str, views: list[View]) -> str:
    """``text`` (a .mdl file) with its sketch replaced by ``views``' (or one added)."""
    equations, _, rest = split_sketch(text)
    newline = "\r\n" if "\r\n" in equations else "\n"
    if equations and not equations.endswith(("\n", "\r")):
        equations += newline
    return equations + sketch_text(views, newline) + rest


@dataclass(frozen=True)
class Record:
    """One object record of a sketch as written: type 10/11/12 or 1 (arrow)."""

    view: str
    line: int
    type: int
    id: int
    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.fields[2]

    @property
    def xy(self) -> tuple[int, int]:
        return int(self.fields[3]), int(self.fields[4])


def read_sketch(text: str) -> list[Record]:
    """Every object record of the sketch of ``text`` (a .mdl file), with its view and line.

    Raises ValueError naming the line of a record that is not well formed.
    """
    equations, sketch, _ = split_sketch(text)
    first = equations.count("\n") + 1
    view, records = "", []
    for offset, raw in enumerate(sketch.splitlines()):
        line = raw.strip()
        if line.startswith("*"):
            view = line[1:]
        if not re.match(r"^\d+,", line):
            continue
        fields = tuple(line.split("|", 1)[0].split(","))
        kind = int(fields[0])
        try:
            if kind == 1:
                int(fields[2]), int(fields[3])
                count = int(fields[-1])
                points = re.findall(r"\|\((-?\d+),(-?\d+)\)", line)
                if len(points) != count:
                    raise ValueError(f"{count} points announced, {len(points)} given")
            elif kind in (10, 11, 12):
                [int(f) for f in fields[3:15]]
                if len(fields) < 15:
                    raise ValueError("fewer than 15 fields")
            records.append(Record(view, first + offset, kind, int(fields[1]), fields))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"line {first + offset}: malformed sketch record: {exc}") from None
    return records
