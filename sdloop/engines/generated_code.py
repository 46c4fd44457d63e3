"""The Python PySD generated, checked before it is ever imported.

``verify_generated(folder, expected_docs, model)`` parses every ``.py`` of a translation with
``ast`` (nothing runs) and refuses it, as a ``ModelFileError`` naming the model file, unless:

- every component function's docstring is, word for word, the inert documentation of the
  element it is named after (text that escaped its docstring would change it);
- no other string stands alone as a statement (the tail of an escaped docstring would);
- imports come only from PySD, numpy, xarray, scipy and pathlib, at the top of the module;
- no name reaches for the interpreter (``exec``, ``eval``, ``open``, ``__import__``, ``os`` ...)
  and no attribute is a double-underscore one.

These hold for everything PySD 3 writes; a translation that breaks one is not run.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Mapping

from sdloop.errors import ModelFileError

ALLOWED_IMPORTS = ("pysd", "numpy", "xarray", "scipy", "pathlib")
FORBIDDEN_NAMES = frozenset({
    "exec", "eval", "compile", "open", "__import__", "globals", "locals", "vars", "getattr", "setattr",
    "delattr", "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
    "__spec__", "os", "sys", "subprocess", "importlib", "builtins", "shutil", "socket", "pickle", "ctypes",
})
FORBIDDEN_NODES = (ast.Global, ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef, ast.Await, ast.Yield,
                   ast.YieldFrom, ast.With, ast.AsyncWith, ast.Try, ast.Raise, ast.Delete)
PYSD_DOCSTRINGS = {"Time": "Current time of the model."}  # components PySD writes itself


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def _component_name(function: ast.FunctionDef) -> str | None:
    """The ``name=`` of a ``@component.add(...)`` decorator."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "component.add":
            for keyword in decorator.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return None


def _is_string(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def problems(source: str, expected_docs: Mapping[str, str]) -> list[str]:
    """What is wrong with one generated module (empty when it is what PySD writes for the model)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        return [f"it is not valid Python ({exc})"]
    found = []
    expected = {name: _words(doc) for name, doc in expected_docs.items()}
    for position, statement in enumerate(tree.body):
        if _is_string(statement) and position > 0:
            found.append(f"line {statement.lineno}: a string outside any docstring")
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in statement.names] if isinstance(statement, ast.Import) else [statement.module or ""]
            bad = [m for m in modules if m.split(".")[0] not in ALLOWED_IMPORTS or getattr(statement, "level", 0)]
            if bad:
                found.append(f"line {statement.lineno}: imports {', '.join(bad) or 'a relative module'}")
        elif isinstance(statement, ast.FunctionDef):
            found += _function_problems(statement, expected)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body:
            found.append(f"line {node.lineno}: an import inside a function")
        elif isinstance(node, FORBIDDEN_NODES):
            found.append(f"line {node.lineno}: a {type(node).__name__} statement")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"line {node.lineno}: uses '{node.id}'")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            found.append(f"line {node.lineno}: uses '.{node.attr}'")
    return found


def _function_problems(function: ast.FunctionDef, expected: Mapping[str, str]) -> list[str]:
    found = []
    body = function.body
    for statement in body[1:]:
        if _is_string(statement):
            found.append(f"line {statement.lineno}: a string outside any docstring (in {function.name})")
    name = _component_name(function)
    if name is None:
        return found
    doc = _words(ast.get_docstring(function, clean=False))
    want = expected.get(name, _words(PYSD_DOCSTRINGS.get(name)))
    if doc != want:
        found.append(f"line {function.lineno}: the docstring of '{name}' is not its comment in the model file")
    return found


def shadowed(source: str) -> list[tuple[str, str]]:
    """(Vensim name, Python name) of each component whose function has the name of something the
    module imports (a variable called ``exp`` makes PySD's ``exp(1)`` call that variable)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    imported = {alias.asname or alias.name.split(".")[0] for statement in tree.body
                if isinstance(statement, (ast.Import, ast.ImportFrom)) for alias in statement.names}
    functions = {statement.name: statement for statement in tree.body if isinstance(statement, ast.FunctionDef)}
    # a component takes no arguments: called with some, the call meant a function of the same name
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in functions and (node.args or node.keywords)
              and not functions[node.func.id].args.args}
    return [(_component_name(functions[name]) or name, name) for name in sorted((imported & set(functions)) | called)]


def verify_generated(folder: str | Path, expected_docs: Mapping[str, str], model: str | Path) -> None:
    """ModelFileError (naming ``model``) unless every ``.py`` in ``folder`` passes ``problems``."""
    for path in sorted(Path(folder).rglob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"cannot read PySD's translation {path.name}: {exc}", file=model) from None
        for name, python in shadowed(source):
            raise ModelFileError(f"the name hides the function '{python}' that PySD's translation calls, so PySD "
                                 "would compute wrong numbers; rename the variable (or run it with --engine numpy)",
                                 file=model, variable=name)
        found = problems(source, expected_docs)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise ModelFileError(
                f"refused to run PySD's translation {path.name}: {found[0]}{more}; text from the model file "
                "must never become code", file=model)
