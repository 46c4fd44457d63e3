"""Dimensional consistency of a model's equations, with Vensim's unit conventions.

Unit strings (``Person/Year``, ``1/(Second*Second)``, ``bn yuan``, ``Dmnl``) become sympy
products of unit symbols. ``Dmnl``, ``1`` and ``dimensionless`` are the empty product; time
and other unit names match singular and plural and any capitalization (``Year``, ``Years``,
``year``; ``Unit``, ``Units``; ``Widget``, ``widgets``), as in Vensim, whose unit check reads a
name with a trailing ``s`` as its singular (a name ending in ``ss``, such as ``Mass``, and
one- or two-letter names, such as ``s``, are kept as written). Words separated by spaces multiply
(``billion yuan`` is billion times yuan, so ``billion yuan / (yuan/USD)`` is ``billion USD``).

XMILE files (as Stella writes them) follow XMILE's conventions on top: ``per`` divides
(``people per year``), the unit ``time`` is the model's time unit (``1/time``; from
``<sim_specs time_units=...>``), ``unitless`` is dimensionless, and the names and aliases
the file declares in ``<model_units>`` stand for what they define
(``sdloop.lang.xmile_units``). Numbers in equations take whatever units their
context needs, also in a product with Time or TIME STEP (the written-out RAMP, PULSE,
SIN of Time); a product with a factor of unknown units has unknown units. Checked: every equation against its variable's declared units, the terms
of every sum, difference, comparison, MIN/MAX and IF THEN ELSE against each other, the
arguments of EXP/LN/trigonometric functions (dimensionless), and every stock against its
flows (flow units times time units). Variables without units are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from sdloop.structure.lookups import LookupFunction
from sdloop.structure.symbols import TIME, time_step_symbol
from sdloop.structure.placeholders import Unsupported
from sdloop.structure.build import ModelStructure, Variable

DIMENSIONLESS = frozenset({"dmnl", "1", "dimensionless", "dimensionless unit", "unitless"})
TIME_UNITS = {
    "year": "Year", "month": "Month", "week": "Week", "day": "Day", "hour": "Hour",
    "minute": "Minute", "second": "Second", "quarter": "Quarter",
}


SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One finding of ``sdloop check``: ``FILE:LINE: VARIABLE: message``.

    ``severity`` is ``"error"`` (the model is wrong or cannot be analysed) or ``"warning"``
    (it runs, but is not documented as the project's standards ask); ``report()`` shows it
    after the location, ``FILE:LINE: error: VARIABLE: message``.
    """

    file: str
    line: int | None
    variable: str | None
    message: str
    severity: str = "error"

    def _where(self) -> str:
        return self.file + (f":{self.line}" if self.line else "") + ": "

    def __str__(self) -> str:
        return self._where() + (f"{self.variable}: " if self.variable else "") + self.message

    def report(self) -> str:
        """The line ``sdloop check`` prints: location, severity, variable, message."""
        return (self._where() + f"{self.severity}: " + (f"{self.variable}: " if self.variable else "")
                + self.message)


class UnitSyntaxError(ValueError):
    pass


def _canonical(name: str) -> str:
    """The key a unit name is compared by: lower case, one space between words, singular."""
    key = re.sub(r"\s+", " ", name.strip()).lower()
    if key in DIMENSIONLESS or key.endswith("ss") or len(key) < 3 or not key.endswith("s"):
        return key
    return key[:-1]


class UnitParser:
    """Parse unit strings into sympy expressions; remembers display spellings.

    Vensim's conventions by default. ``definitions`` (lower-case name -> unit text),
    ``per`` and ``time_units`` add XMILE's: declared names and aliases, ``per`` as
    division, ``time`` as the model's time unit.
    """

    def __init__(self, definitions: dict[str, str] | None = None, *, per: bool = False,
                 time_units: str | None = None) -> None:
        self.spelling: dict[str, str] = {}
        self.definitions = {_canonical(k): v for k, v in (definitions or {}).items()}
        if time_units:
            self.definitions.setdefault("time", time_units)
        self.per = per
        self._expanding: set[str] = set()

    def parse(self, text: str) -> sympy.Expr | None:
        """Units as a sympy expression; None for an empty string. Raises UnitSyntaxError."""
        text = re.sub(r"\[.*\]\s*$", "", text).strip()
        if self.per:
            text = re.sub(r"(^|\s)per\s+", r"\1/ ", text, flags=re.IGNORECASE).strip()
            text = "1 " + text if text.startswith("/") else text
        if not text:
            return None
        tokens = re.findall(r"\(|\)|\*|/|\^|-?\d+(?:\.\d+)?(?![\w$%])|[^()*/^]+", text)
        tokens = [t.strip() for t in tokens if t.strip()]
        self._tokens, self._pos = tokens, 0
        expr = self._product()
        if self._pos != len(tokens):
            raise UnitSyntaxError(f"cannot read units '{text}'")
        return expr

    def _peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise UnitSyntaxError("units end too early")
        self._pos += 1
        return token

    def _product(self) -> sympy.Expr:
        expr = self._power()
        while self._peek() in ("*", "/"):
            op = self._take()
            rhs = self._power()
            expr = expr * rhs if op == "*" else expr / rhs
        return expr

    def _power(self) -> sympy.Expr:
        base = self._atom()
        if self._peek() == "^":
            self._take()
            exponent = self._take()
            if exponent == "(":
                exponent = self._take()
                if self._take() != ")":
                    raise UnitSyntaxError("expected ')'")
            try:
                base = base ** sympy.Rational(exponent)
            except (TypeError, ValueError):
                raise UnitSyntaxError(f"bad exponent '{exponent}'") from None
        return base

    def _atom(self) -> sympy.Expr:
        token = self._take()
        if token == "(":
            expr = self._product()
            if self._take() != ")":
                raise UnitSyntaxError("expected ')'")
            return expr
        if re.fullmatch(r"-?\d+(\.\d+)?", token):
            return sympy.Integer(1)  # a scale factor such as 1000 carries no dimension
        if _canonical(token) in DIMENSIONLESS:
            return sympy.Integer(1)
        if _canonical(token) in self.definitions:
            return self._defined(_canonical(token))
        expr = sympy.Integer(1)
        for word in token.split():
            key = _canonical(word)
            if key in DIMENSIONLESS:
                continue
            if key in self.definitions:
                expr *= self._defined(key)
                continue
            self.spelling.setdefault(key, TIME_UNITS.get(key, word))
            expr *= sympy.Symbol(key, positive=True)
        return expr

    def _defined(self, key: str) -> sympy.Expr:
        """The units a declared name or alias stands for (a name defined by itself is a base unit)."""
        if key in self._expanding or _canonical(self.definitions[key]) == key:
            self.spelling.setdefault(key, TIME_UNITS.get(key, self.definitions[key]))
            return sympy.Symbol(key, positive=True)
        self._expanding.add(key)
        saved = self._tokens, self._pos
        try:
            expr = self.parse(self.definitions[key])
        finally:
            self._tokens, self._pos = saved
            self._expanding.discard(key)
        return sympy.Integer(1) if expr is None else expr

    def format(self, units: sympy.Expr) -> str:
        """Vensim spelling: ``Person/Year``, ``1/Year``, ``Meter/(Second^2)``, ``Dmnl``."""
        if units == 1:
            return "Dmnl"
        num, den = units.as_numer_denom()

        def part(expr):
            factors = []
            for base, exp in sorted(expr.as_powers_dict().items(), key=lambda kv: str(kv[0])):
                if base == 1:
                    continue
                name = self.spelling.get(str(base), str(base))
                factors.append(name if exp == 1 else f"{name}^{exp}")
            return factors

        top, bottom = part(num), part(den)
        text = "*".join(top) or "1"
        if bottom:
            text += "/" + (bottom[0] if len(bottom) == 1 else "(" + "*".join(bottom) + ")")
        return text


_DIMENSIONLESS_FUNCTIONS = (sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan,
                            sympy.asin, sympy.acos, sympy.atan)


def parser_for(structure: ModelStructure) -> UnitParser:
    """A UnitParser with the conventions of the structure's file format (Vensim or XMILE)."""
    from sdloop.lang.xmile_units import is_xmile, unit_definitions

    if not is_xmile(structure.path):
        return UnitParser()
    return UnitParser(unit_definitions(structure.path), per=True, time_units=structure.time_units or None)


class UnitChecker:
    """Infer the units of sympy expressions from the declared units of their symbols."""

    def __init__(self, structure: ModelStructure) -> None:
        self.structure = structure
        self.parser = parser_for(structure)
        self.problems: list[Problem] = []
        self.declared: dict[str, sympy.Expr | None] = {}
        for var in structure.variables.values():
            self.declared[var.name] = self._parse_declared(var)
        self.time = self.parser.parse(structure.time_units) if structure.time_units else None
        self._current: Variable | None = None
        self._clock = {TIME, time_step_symbol()}
        # TREND's written-out stock (no units, no outflow) holds its input: units of the input
        # (its flow is (input - stage) / average time); other written-out stocks without
        # units take the units of their initial value
        for var in structure.stocks:
            if var.owner is not None and not var.outflows and self.declared.get(var.name) is None:
                self._current = var
                flow = structure.variables[var.inflows[0]] if var.inflows else None
                if var.delay is not None and flow is not None:
                    self.declared[var.name] = self.infer(sympy.expand(flow.equation * var.delay + var.symbol))
                else:
                    self.declared[var.name] = self.infer(var.initial)

    def _parse_declared(self, var: Variable) -> sympy.Expr | None:
        try:
            return self.parser.parse(var.units)
        except UnitSyntaxError as exc:
            if var.owner is None:
                self._report(var, str(exc))
            return None

    def _report(self, var: Variable, message: str) -> None:
        problem = Problem(str(self.structure.path), var.line, var.vensim_name, message)
        if problem not in self.problems:
            self.problems.append(problem)

    def _mismatch(self, expected, found, suffix: str = "") -> None:
        self._report(self._current, f"expected {self.parser.format(expected)}, "
                                    f"found {self.parser.format(found)}{suffix}")

    def _unify(self, units: list) -> sympy.Expr | None:
        known = [u for u in units if u is not None]
        for other in known[1:]:
            if sympy.simplify(other / known[0]) != 1:
                self._mismatch(known[0], other)
                break
        return known[0] if known else None

    def infer(self, expr) -> sympy.Expr | None:
        """Units of ``expr``; None where any units would do (numbers, undeclared names)."""
        if isinstance(expr, (sympy.Number, sympy.logic.boolalg.BooleanAtom)) or expr is sympy.true:
            return None
        if expr == TIME:
            return self.time
        if isinstance(expr, sympy.Symbol):
            var = self.structure.by_symbol(expr)
            return self.declared.get(var.name) if var is not None else None
        if isinstance(expr, sympy.Add):
            return self._unify([self.infer(a) for a in expr.args])
        if isinstance(expr, sympy.Pow) and expr.base in self._clock and expr.exp.is_negative:
            return None  # 1 / TIME STEP alone: XMILE's PULSE(1, 3) written out; the 1 is an amount
        if isinstance(expr, sympy.Mul) and self._forecast_with_literal_horizon(expr):
            trend = self.infer(expr.as_coeff_Mul()[1])  # FORECAST(x, T, 8): 8 is a time times x's trend
            return trend * self.time if trend is not None and self.time is not None else None
        if isinstance(expr, sympy.Mul):
            factors = [self._pow_units(a) if isinstance(a, sympy.Pow) else self.infer(a) for a in expr.args]
            unknown = any(u is None and not isinstance(a, sympy.Number) for a, u in zip(expr.args, factors))
            unknown = unknown or self._number_times_clock(expr)
            return None if unknown else sympy.Mul(*(u for u in factors if u is not None))
        if isinstance(expr, sympy.Pow):
            return self._pow_units(expr)
        if isinstance(expr, sympy.Piecewise):
            values = []
            for value, condition in expr.args:
                self.infer(condition)
                values.append(self.infer(value))
            return self._unify(values)
        if isinstance(expr, sympy.core.relational.Relational):
            self._unify([self.infer(expr.lhs), self.infer(expr.rhs)])
            return None
        if isinstance(expr, sympy.logic.boolalg.Boolean):
            for arg in expr.args:
                self.infer(arg)
            return None
        if isinstance(expr, LookupFunction):
            self.infer(expr.args[0])
            var = self.structure.get(expr.vensim_name)
            return self.declared.get(var.name) if var is not None else None
        if isinstance(expr, Unsupported):
            return None
        if isinstance(expr, _DIMENSIONLESS_FUNCTIONS):
            for arg in expr.args:
                self._dimensionless(self.infer(arg))
            return sympy.Integer(1)
        if isinstance(expr, sympy.sign):
            self.infer(expr.args[0])
            return sympy.Integer(1)
        if isinstance(expr, sympy.Abs) and self._trend_with_literal_time(expr.args[0]):
            stage = self.infer(expr.args[0])  # TREND(x, 6, 0): 6 * |stage| is a time times x
            return stage * self.time if stage is not None and self.time is not None else None
        if isinstance(expr, (sympy.Abs, sympy.floor, sympy.ceiling)):
            return self.infer(expr.args[0])
        if isinstance(expr, (sympy.Mod, sympy.Min, sympy.Max)):
            return self._unify([self.infer(a) for a in expr.args])
        return None

    def _pow_units(self, expr: sympy.Pow) -> sympy.Expr | None:
        base, exponent = self.infer(expr.base), expr.exp
        if isinstance(exponent, sympy.Number):
            return base**exponent if base is not None else None
        self._dimensionless(base)
        self._dimensionless(self.infer(exponent))
        return sympy.Integer(1) if base is not None else None

    def _number_times_clock(self, expr: sympy.Mul) -> bool:
        """A number times Time or TIME STEP: RAMP(0.5, 30) written out (0.5 * (Time - 30)),
        XMILE's PULSE(50, 10) (50 / TIME STEP), SIN(6.28 * Time / 52). The number takes
        whatever units its context needs (a slope, an amount, an angular frequency), so the
        product's units are not known."""
        coefficient, rest = expr.as_coeff_Mul()  # RAMP(1, ...) keeps its slope as the Float 1.0
        return coefficient is not sympy.S.One and bool(rest.free_symbols & self._clock)

    def _forecast_with_literal_horizon(self, expr: sympy.Mul) -> bool:
        """Whether ``expr`` is a FORECAST's trend times its horizon, a number (which, as the
        modeller meant it, is in the model's time unit): the stage keeps the horizon."""
        coefficient, rest = expr.as_coeff_Mul()
        if not isinstance(rest, sympy.Piecewise):
            return False
        for symbol in rest.free_symbols:
            var = self.structure.by_symbol(symbol)
            if (var is not None and var.kind == "stock" and var.owner is not None and var.delay == coefficient
                    and not rest.has(sympy.Abs(symbol))):
                return True
        return False

    def _trend_with_literal_time(self, expr) -> bool:
        """Whether ``expr`` is the stage of a TREND whose average time is a number (which,
        as the modeller meant it, is in the model's time unit)."""
        var = self.structure.by_symbol(expr) if isinstance(expr, sympy.Symbol) else None
        return (var is not None and var.kind == "stock" and var.owner is not None
                and isinstance(var.delay, sympy.Number))

    def _dimensionless(self, units) -> None:
        if units is not None and units != 1:
            self._mismatch(sympy.Integer(1), units)

    def check_variable(self, var: Variable) -> None:
        """Check one variable's equation (and a stock's initial value and flows)."""
        self._current = var
        declared = self.declared.get(var.name)
        if var.kind == "stock":
            if var.initial is not None and not (var.owner is not None and var.delay is not None):
                # (a TREND stage's initial value input / (1 + trend * time) is written out by sdloop)
                self._check_against(declared, self.infer(var.initial), " in the initial value")
            if declared is None or self.time is None:
                return
            for flow in var.inflows + var.outflows:
                flow_units = self.declared.get(flow)
                if flow_units is not None and sympy.simplify(flow_units * self.time / declared) != 1:
                    role = "inflow" if flow in var.inflows else "outflow"
                    self._mismatch(declared / self.time, flow_units,
                                   f" ({role} '{self.structure.variables[flow].vensim_name}')")
            return
        if var.kind in ("lookup", "control", "constant"):
            return
        found = self.infer(var.equation)
        if var.kind == "delay_fixed" and var.initial is not None:
            self._check_against(declared, self.infer(var.initial), " in the initial value")
        self._check_against(declared, found)

    def _check_against(self, declared, found, suffix: str = "") -> None:
        if declared is not None and found is not None and sympy.simplify(found / declared) != 1:
            self._mismatch(declared, found, suffix)


def check_units(structure: ModelStructure) -> list[Problem]:
    """Every units mismatch of the model, in file order."""
    checker = UnitChecker(structure)
    for var in structure.variables.values():
        checker.check_variable(var)
    return sorted(checker.problems, key=lambda p: (p.line or 0, p.variable or ""))


def format_units(text: str) -> str:
    """A unit string in canonical spelling (for messages and tests)."""
    parser = UnitParser()
    units = parser.parse(text)
    return "" if units is None else parser.format(units)


__all__ = ["Problem", "UnitChecker", "UnitParser", "UnitSyntaxError", "check_units", "format_units"]
