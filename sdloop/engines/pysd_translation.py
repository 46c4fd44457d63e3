"""Translate a model file to Python through PySD, into a cache directory keyed by the file's
content (and the data files it reads), never next to the model file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from sdloop.engines.cache_entries import discard, intact, private_cache, seal
from sdloop.engines.generated_code import verify_generated
from sdloop.engines.pysd_runtime import pysd, quiet_pysd
from sdloop.errors import ModelFileError, first_line
from sdloop.lang.inert import docstrings, make_inert
from sdloop.lang.equations import read_text, SourceIndex
from sdloop.lang.source import parse_model
from sdloop.structure.clock import check_structure_clock

TRANSLATION_FORMAT = "inert-docs-2"  # part of the cache key: entries from before sealed entries (1) and from
# before XMILE <gf> <xpts> were used over <xscale> (2) are not reused


def cache_dir() -> Path:
    """Where translated models are kept: ``$SDLOOP_CACHE`` or ``~/.cache/sdloop``."""
    return Path(os.environ.get("SDLOOP_CACHE", Path.home() / ".cache" / "sdloop"))


def data_files(path: Path, abstract, index: SourceIndex) -> dict[str, Path]:
    """Data files the model reads (GET XLS/DIRECT ..., subscript ranges from files), as
    written -> resolved against the model's folder. ModelFileError (with the line) for a
    file that does not exist."""
    from sdloop.lang.references import walk

    found: dict[str, tuple[str, int | None]] = {}
    for section in abstract.sections:
        for rng in section.subscripts:
            if isinstance(rng.subscripts, dict) and "file" in rng.subscripts:
                found.setdefault(rng.subscripts["file"], (rng.name, index.line(rng.name)))
        for element in section.elements:
            for component in element.components:
                for node in walk(component.ast):
                    name = getattr(node, "file", None)
                    if isinstance(name, str) and type(node).__name__.startswith("Get"):
                        found.setdefault(name, (element.name, index.line(element.name)))
    files = {}
    for name, (variable, line) in found.items():
        if name.startswith("?"):
            raise ModelFileError(f"data file alias '{name}' is not supported (write the file name)",
                                 file=path, line=line, variable=variable)
        resolved = (path.parent / name).resolve()
        if not resolved.is_file():
            raise ModelFileError(f"data file '{name}' not found in {path.parent.resolve()}",
                                 file=path, line=line, variable=variable)
        files[name] = resolved
    return files


def _require_valid(path: Path, abstract, index: SourceIndex) -> None:
    """Refuse, with file and line, a model PySD would translate but cannot run (simultaneous
    equations, infinite constants, initial values that depend on each other)."""
    from sdloop.structure.build import structure_from_abstract

    try:
        structure = structure_from_abstract(path, abstract, index)
    except Exception:  # a construct the structure layer does not know: PySD decides
        return
    structure.require_valid()
    check_structure_clock(structure)


def _staged_path(work: Path, name: str, depth: int) -> Path:
    """Where a data file written as ``name`` goes in the translation folder (inside it)."""
    return (work / "m" / Path(*["d"] * depth) / name).resolve()


def translate(path: Path) -> Path:
    """Translate a model file to Python in the cache and return the ``.py`` path.

    The file is validated first (clear errors with line and variable). The cache key is
    the file content, the contents of the data files it reads (resolved relative to the
    model's folder, copied next to the translation) and the PySD version, so an edited
    model or data file is translated anew. Documentation strings are made inert before PySD
    writes Python (``sdloop.lang.inert``); the Python is checked before it is used
    (``generated_code.verify_generated``), and an entry is used again only while the hashes
    recorded when it was written still match (``cache_entries``); a damaged one is rebuilt.
    """
    text = read_text(path)
    abstract, index = parse_model(path)  # raises ModelFileError naming file, line and variable
    files = data_files(path, abstract, index)
    _require_valid(path, abstract, index)
    digest = hashlib.sha256((TRANSLATION_FORMAT + pysd.__version__ + path.suffix + text).encode())
    for name, resolved in sorted(files.items()):
        digest.update(name.encode() + b"\0" + resolved.read_bytes())
    key = digest.hexdigest()[:20]
    target = private_cache(cache_dir()) / f"{path.stem}-{key}"
    depth = max((len(Path(n).parts) for n in files if not Path(n).is_absolute()), default=0)
    translated = _staged_path(target, path.stem + ".py", depth) if files else target / (path.stem + ".py")
    expected = docstrings(abstract)  # what each generated docstring must be
    if target.exists():
        if intact(target):
            verify_generated(target, expected, path)
            for stale in target.rglob("__pycache__"):  # bytecode is not covered by the hashes
                shutil.rmtree(stale, ignore_errors=True)
            return translated
        warnings.warn(f"the translation cache entry {target} was damaged (changed, partial or left by a killed "
                      f"translation); translating {path.name} again")
        discard(target)
    work = Path(tempfile.mkdtemp(prefix=".translate-", dir=target.parent))
    try:
        copy = _staged_path(work, path.name, depth) if files else work / path.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text, encoding="utf-8")
        for name, resolved in files.items():
            if not Path(name).is_absolute():
                staged = _staged_path(work, name, depth)
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(resolved, staged)
        with quiet_pysd(), np.errstate(all="ignore"):
            _build(copy)
        verify_generated(work, expected, path)
        seal(work)
        try:
            work.rename(target)
        except OSError:  # another process translated the same file meanwhile
            pass
    except ModelFileError:
        raise
    except Exception as exc:
        message = first_line(exc).replace(str(copy.parent), str(path.parent))
        raise ModelFileError(f"PySD could not translate the model: {message}", file=path) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return translated


def _build(copy: Path) -> Path:
    """PySD's translation of ``copy`` (as ``pysd.read_vensim``/``read_xmile`` do, without loading it),
    with every documentation string made inert first."""
    from pysd.builders.python.python_model_builder import ModelBuilder

    if copy.suffix.lower() == ".mdl":
        from pysd.translators.vensim.vensim_file import VensimFile

        reader = VensimFile(copy)
    else:
        from pysd.translators.xmile.xmile_file import XmileFile

        from sdloop.lang.xmile_points import use_listed_points

        reader = XmileFile(copy)
        use_listed_points(reader.xmile_root)  # a <gf> with <xpts> and <xscale>: the listed points
    reader.parse()
    abstract = reader.get_abstract_model()
    make_inert(abstract)
    return ModelBuilder(abstract).build_model()

