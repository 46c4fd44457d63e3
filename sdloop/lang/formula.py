"""A small, safe expression language for metrics, claims and figure lines in project files.

Text is parsed with Python's ``ast`` (which only parses, never runs anything) and every node
is checked against a whitelist: numbers, strings, names, calls of a plain function name with
positional and keyword arguments, lists, unary ``-``/``+``/``not``, ``+ - * / **``,
comparisons (chained as in Python) and ``and``/``or``. Anything else (attribute access,
subscripts, lambdas, comprehensions, f-strings, ...) is refused with a message. The result is a
tree of the frozen dataclasses below; what names and calls mean is up to the caller (metrics,
claims). Nothing here evaluates user text.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MAX_LENGTH = 4000  # characters; longer expressions are refused before parsing
MAX_DEPTH = 60  # nesting depth of the tree


class FormulaError(ValueError):
    """An expression that cannot be parsed or uses something not allowed."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class ListOf:
    items: tuple


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple
    kwargs: tuple  # ((name, node), ...)

    def keyword(self, name: str):
        return dict(self.kwargs).get(name)


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+", "not"
    operand: object


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/", "**"
    left: object
    right: object


@dataclass(frozen=True)
class Compare:
    ops: tuple  # ("<", "<=", ...)
    operands: tuple  # len(ops) + 1


@dataclass(frozen=True)
class Logic:
    op: str  # "and", "or"
    values: tuple


_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_REFUSED = {
    ast.Attribute: "attribute access ('.')", ast.Subscript: "subscripts ('[...]')",
    ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions",
    ast.SetComp: "comprehensions", ast.DictComp: "comprehensions", ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment (':=')", ast.IfExp: "'if ... else'", ast.Dict: "dictionaries",
    ast.Set: "sets", ast.Starred: "'*' arguments", ast.Await: "await", ast.Yield: "yield",
}


def parse(text: str) -> object:
    """The expression tree of ``text``; FormulaError (with a character offset) if it is not
    a well-formed expression of the allowed kinds."""
    if not isinstance(text, str):
        raise FormulaError("an expression must be a string")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"expression longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise FormulaError("empty expression")
    flat = " ".join(text.strip().splitlines())  # an expression may span lines in a project file
    try:
        tree = ast.parse(flat, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a valid expression: {exc.msg}", exc.offset) from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("expression nested too deeply") from None
    return _convert(tree.body, 0)


def _offset(node: ast.AST) -> int | None:
    return getattr(node, "col_offset", None)


def _convert(node: ast.AST, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise FormulaError("expression nested too deeply", _offset(node))
    down = depth + 1
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, (bytes, complex)):
            raise FormulaError(f"constant {value!r} is not allowed (numbers and quoted names only)", _offset(node))
        if isinstance(value, str):
            return Str(value)
        return Num(float(value))
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return ListOf(tuple(_convert(item, down) for item in node.elts))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return Unary(_UNARY[type(node.op)], _convert(node.operand, down))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return Binary(_BINARY[type(node.op)], _convert(node.left, down), _convert(node.right, down))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        return Compare(tuple(_COMPARE[type(op)] for op in node.ops),
                       tuple(_convert(x, down) for x in (node.left, *node.comparators)))
    if isinstance(node, ast.BoolOp):
        return Logic("and" if isinstance(node.op, ast.And) else "or", tuple(_convert(v, down) for v in node.values))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise FormulaError("only plain function names can be called", _offset(node))
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise FormulaError("'*' and '**' arguments are not allowed", _offset(node))
        return Call(node.func.id, tuple(_convert(a, down) for a in node.args),
                    tuple((k.arg, _convert(k.value, down)) for k in node.keywords))
    what = next((text for kind, text in _REFUSED.items() if isinstance(node, kind)), type(node).__name__)
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        what = f"operator {type(node.op).__name__}"
    if isinstance(node, ast.Compare):
        what = "'in' and 'is'"
    raise FormulaError(f"{what} not allowed in an expression", _offset(node))


def walk(node: object):
    """Every node of a tree, parents first."""
    yield node
    if isinstance(node, ListOf):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
        for _, value in node.kwargs:
            yield from walk(value)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Compare):
        for operand in node.operands:
            yield from walk(operand)
    elif isinstance(node, Logic):
        for value in node.values:
            yield from walk(value)
