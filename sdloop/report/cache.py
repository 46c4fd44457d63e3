"""A cache of work whose inputs did not change: runs, figures, loop analyses, ensembles.

Keys are SHA-256 digests of everything the work depends on: the model file's text, the
parameters, the specification (metrics, figure payloads, ensemble design) and the code version
(a digest of sdloop's own source files), so an edit to any of them misses. Entries live under
``$SDLOOP_CACHE/results`` (default ``~/.cache/sdloop/results``) as plain files: arrays in
``.npz`` files loaded with ``allow_pickle=False``, figures and tables as they are. Every entry
is written under a temporary name, sealed with the SHA-256 of each file
(``sdloop.engines.cache_entries``) and renamed into place; an entry that is not exactly what was
sealed (changed, truncated, files added) is discarded and the work done again. The folder is
private to the user (0700).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from sdloop.engines.cache_entries import ENTRY_FILE, discard, intact, new_entry, private_cache
from sdloop.report.output import atomic_file
from sdloop.version import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """sdloop's version and a digest of its source files (an edit to the code invalidates the cache)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _feed(h, obj) -> None:
    if isinstance(obj, pd.DataFrame):
        h.update(b"df")
        _feed(h, [str(c) for c in obj.columns])
        _feed(h, obj.index.to_numpy())
        _feed(h, obj.to_numpy())
    elif isinstance(obj, pd.Series):
        h.update(b"series")
        _feed(h, obj.index.to_numpy())
        _feed(h, obj.to_numpy())
    elif isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(f"nd{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=str):
            _feed(h, str(key))
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, float):
        h.update(b"f" + np.float64(obj).tobytes())
    elif isinstance(obj, Path):
        h.update(b"p" + str(obj).encode())
    elif obj is None or isinstance(obj, (str, int, bool)):
        h.update(repr(obj).encode())
    elif hasattr(obj, "__dataclass_fields__"):
        _feed(h, {name: getattr(obj, name) for name in obj.__dataclass_fields__})
    else:
        raise TypeError(f"cannot digest {type(obj).__name__}")


def digest(*parts) -> str:
    """A SHA-256 key of plain data, DataFrames and arrays, together with the code version."""
    h = hashlib.sha256(code_version().encode())
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Cache:
    """Entries by key: arrays (``npz``) or a set of files. ``enabled=False`` stores and finds nothing."""

    def __init__(self, root: str | Path | None = None, *, enabled: bool = True) -> None:
        if root is None:
            from sdloop.engines.pysd_translation import cache_dir

            root = cache_dir() / "results"
        self.root = Path(root)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def _found(self, kind: str, key: str) -> Path | None:
        """The entry's folder when it is intact; a damaged one is discarded (counted as a miss)."""
        where = self._dir(kind, key)
        if where.is_dir() and intact(where):
            return where
        if where.exists():
            discard(where)
        self.misses += 1
        return None

    # arrays --------------------------------------------------------------
    def get_arrays(self, kind: str, key: str) -> tuple[dict, dict] | None:
        """(arrays, metadata) of an entry, or None."""
        if not self.enabled:
            return None
        where = self._found(kind, key)
        if where is None:
            return None
        try:
            meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
            with np.load(where / "arrays.npz", allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return arrays, meta

    def put_arrays(self, kind: str, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
        if not self.enabled:
            return
        with self._entry(kind, key) as work:
            np.savez(work / "arrays.npz", **arrays)
            (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    # files -----------------------------------------------------------------
    def get_files(self, kind: str, key: str, dest: Path) -> list[Path] | None:
        """Copy an entry's files into ``dest`` (same relative names); None when missing."""
        if not self.enabled:
            return None
        where = self._found(kind, key)
        if where is None:
            return None
        copied = []
        for path in sorted(where.rglob("*")):
            if path.is_file() and path.name != ENTRY_FILE:
                target = dest / path.relative_to(where)
                with atomic_file(target) as tmp:
                    shutil.copyfile(path, tmp)
                copied.append(target)
        self.hits += 1
        return copied

    def put_files(self, kind: str, key: str, base: Path, files: Iterable[Path]) -> None:
        """Store ``files`` (paths under ``base``) as one entry."""
        if not self.enabled:
            return
        with self._entry(kind, key) as work:
            for path in files:
                target = work / Path(path).relative_to(base)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)

    # writing ---------------------------------------------------------------
    @contextmanager
    def _entry(self, kind: str, key: str) -> Iterator[Path]:
        """A temporary directory renamed to the entry when the block succeeds."""
        final = self._dir(kind, key)
        private_cache(self.root)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            with new_entry(final) as work:
                yield work
        except OSError:  # the disk is full: a cache that cannot be written only costs time
            pass
