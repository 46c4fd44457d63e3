"""Cache entries that can be trusted: a private folder, hashes recorded at write time.

The translation cache (``$SDLOOP_CACHE``, default ``~/.cache/sdloop``) holds Python and
compiled code that sdloop later imports or loads, so:

- ``private_cache(root)`` creates it readable by its owner only (0700) and tightens one that is
  open to others; a cache that is not a usable folder ends in one clear line (exit 2);
- ``seal(folder)`` records the SHA-256 of every file of a finished entry in ``ENTRY_FILE``
  (before the entry is renamed into place);
- ``intact(folder)`` is true only when every recorded file is there with its hash and no other
  file was added: a changed, truncated or partial entry (a killed translation) is not used;
- ``discard(folder)`` moves a damaged entry aside and removes it, so it is built again;
- ``new_entry(final)`` gives a temporary folder to fill, sealed and renamed to ``final``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sdloop.errors import ModelFileError

ENTRY_FILE = "sdloop-entry.json"
PRIVATE = 0o700


def private_cache(root: Path) -> Path:
    """``root`` as an existing folder only its owner can read and write."""
    try:
        root.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
        info = root.stat()
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.chmod(root, PRIVATE)
        probe = root / f".probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as exc:
        reason = "is a file, not a folder" if exc.errno in (errno.EEXIST, errno.ENOTDIR) else (
            exc.strerror or str(exc)).lower()
        raise ModelFileError(f"cannot use the translation cache {root}: {reason} (set SDLOOP_CACHE to a folder "
                             "you can write)") from None
    return root


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != ENTRY_FILE and "__pycache__" not in p.parts)


def seal(folder: Path) -> None:
    """Record the hash of every file in ``folder`` (call when the entry is complete)."""
    record = {name: file_sha256(folder / name) for name in _files(folder)}
    (folder / ENTRY_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def intact(folder: Path) -> bool:
    """True when ``folder`` holds exactly the files recorded by ``seal``, each with its hash."""
    try:
        record = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
        if not isinstance(record, dict) or sorted(record) != _files(folder):
            return False
        return all(not (folder / name).is_symlink() and file_sha256(folder / name) == digest
                   for name, digest in record.items())
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def discard(folder: Path) -> None:
    """Remove a damaged entry (renamed aside first, so no reader sees half of it)."""
    aside = folder.with_name(f".discarded-{folder.name}-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)
    if aside.exists() and aside.is_dir():  # read-only pieces: make them writable, try once more
        for path in aside.rglob("*"):
            try:
                os.chmod(path, stat.S_IRWXU)
            except OSError:
                pass
        shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def new_entry(final: Path, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``final`` to fill; when the block ends it is sealed and renamed to
    ``final`` (an existing ``final`` is kept, or discarded first with ``replace``). The folder is
    removed whatever happens, so no partial entry stays; errors of the block and of sealing reach
    the caller."""
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        yield work
        seal(work)
        if replace and final.exists():
            discard(final)
        try:
            os.rename(work, final)
        except OSError:  # another process stored the same entry meanwhile
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
