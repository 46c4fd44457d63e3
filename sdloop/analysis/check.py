"""The checks behind ``sdloop check MODEL``.

Each finding is a ``Problem`` printed as ``FILE:LINE: SEVERITY: VARIABLE: message``.

Errors (the model is wrong, or sdloop's analysis of it would be):

- undefined names and unknown functions;
- constructs sdloop cannot analyse (RANDOM functions, SAMPLE IF TRUE, ...): its structure,
  units, loops and engine would not be the model PySD runs;
- units mismatches and unreadable units (``sdloop.structure.units``);
- simultaneous equations: auxiliaries that depend on each other with no stock between;
- loop-name sidecar entries (``<model>.loops.toml``) that match no loop of the model, or
  whose declared polarity differs from the computed one.

Warnings (the model runs, but is not documented as the project's standards ask):

- variables of the file without units;
- constants whose comment does not say where the value comes from (a source, a
  statistic, a derivation, or "assumed": the comment must contain one of
  ``SOURCE_MARKERS`` or a year);
- constants and lookups that no equation uses.

A file that cannot be read or parsed, or whose values are infinite (`inf`, 1e999), raises
ModelFileError (the CLI exits 2).
"""

from __future__ import annotations

import re
from pathlib import Path

from sdloop.errors import ModelFileError, SdloopError
from sdloop.structure.lookups import LookupFunction
from sdloop.lang.inert import unsafe_text_problems
from sdloop.lang.references import reference_problems
from sdloop.lang.source import parse_model
from sdloop.structure.build import ModelStructure, structure_from_abstract
from sdloop.structure.clock import check_structure_clock
from sdloop.structure.units import SEVERITIES, Problem, check_units

WARNING = "warning"
_KIND_NAMES = {"delay_fixed": "variable", "initial": "variable"}

SOURCE_MARKERS = (
    "assum", "source", "seed", "deriv", "estimat", "calibrat", "fitted", "data", "statistic",
    "report", "survey", "published", "literature", "paper", ".csv", "document", "test fixture",
    "convention", "definition", "by construction", "normali", "reference", "bureau", "nbs",
    "world bank", "oecd", "ministry", "input", "switch", "lever", "numerical", "scenario",
)


def has_source(comment: str) -> bool:
    """True when a constant's comment says where its value comes from."""
    text = comment.lower()
    return any(marker in text for marker in SOURCE_MARKERS) or bool(re.search(r"\b(19|20)\d\d\b", text))


def check_model(path: str | Path) -> list[Problem]:
    """Every problem sdloop finds in a model file (raises ModelFileError if unusable)."""
    path = Path(path)
    abstract, index = parse_model(path, check_names=False)
    found = reference_problems(abstract, index)
    infinite = [e for e in found if "infinite value" in e.message]
    if infinite:  # unusable, as an infinite constant is (the structure's check, exit 2)
        raise infinite[0]
    problems = [Problem(e.file or str(path), e.line, e.variable, e.message)
                for e in found + unsafe_text_problems(abstract, index)]
    structure = structure_from_abstract(path, abstract, index)
    structure.require_valid()  # a file no engine can run: "cannot read" (exit 2), not a finding
    check_structure_clock(structure)
    problems += structure_problems(structure)
    problems += check_units(structure)
    if not any("undefined name" in p.message or "unknown function" in p.message for p in problems):
        problems += sidecar_problems(structure)
    unique = {str(p): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.file != str(path), p.line or 0))


def count(problems: list[Problem]) -> dict[str, int]:
    """How many errors and warnings: ``{"error": n, "warning": m}``."""
    return {severity: sum(p.severity == severity for p in problems) for severity in SEVERITIES}


def structure_problems(structure: ModelStructure) -> list[Problem]:
    """Unsupported constructs and simultaneous equations (errors); unused names and
    undocumented variables (warnings)."""
    file = str(structure.path)
    problems = [Problem(file, u.line, u.variable, f"{u.construct} is not supported by sdloop's analysis")
                if not u.keeps_inputs else
                Problem(file, u.line, u.variable, f"{u.construct} is run by PySD only: its units are not "
                        "checked and loops through it have a sign only where it has a known one", WARNING)
                for u in structure.unsupported]
    for loop in structure.algebraic_loops:
        first = structure[loop[0]]
        names = [structure[n].vensim_name for n in loop]
        problems.append(Problem(file, first.line, first.vensim_name,
                                "simultaneous equations without a stock: " + " -> ".join(names + names[:1])))
    used: set[str] = set()
    for var in structure.variables.values():
        for expr in (var.equation, var.initial, var.delay):
            if expr is None:
                continue
            found = [structure.by_symbol(sym) for sym in expr.free_symbols]
            found += [structure.get(type(call).vensim_name) for call in expr.atoms(LookupFunction)]
            used |= {v.name for v in found if v is not None}
    for var in structure.variables.values():
        if var.owner is not None or var.kind == "control":
            continue
        if var.kind in ("constant", "lookup") and var.name not in used:
            problems.append(Problem(file, var.line, var.name, f"{var.kind} is not used by any equation", WARNING))
        if not var.units.strip():
            problems.append(Problem(file, var.line, var.name, f"{_KIND_NAMES.get(var.kind, var.kind)} has no units",
                                    WARNING))
        if var.kind == "constant" and not has_source(var.comment):
            problems.append(Problem(file, var.line, var.name,
                                    "constant's comment does not say where its value comes from "
                                    "(a source, a statistic, or 'Assumed' with the range tried)", WARNING))
    return problems


def sidecar_problems(structure: ModelStructure) -> list[Problem]:
    """Loop names in the sidecar that match no loop, or whose polarity is not the computed one."""
    from sdloop.engines.euler import simulate
    from sdloop.analysis.loops import causal_graph, load_loop_names, named_loop, sidecar_path

    try:
        names = load_loop_names(structure.path)
    except ModelFileError as exc:
        return [Problem(exc.file or "", exc.line, exc.variable, exc.message)]
    if not names:
        return []
    file = str(sidecar_path(structure.path))
    try:
        run = simulate(structure)
    except SdloopError:
        run = None
    graph = causal_graph(structure)
    problems = []
    for entry in names:
        loop = named_loop(structure, entry, run, graph=graph)
        if loop is None:
            problems.append(Problem(file, entry.line, entry.name, "matches no feedback loop of the model"))
        elif entry.polarity and loop.polarity != entry.polarity:
            problems.append(Problem(file, entry.line, entry.name,
                                    f"expected polarity {entry.polarity}, found {loop.polarity}"))
    return problems
