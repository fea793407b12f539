"""Writing files atomically with the user's permissions, and removing what interrupted writes left.

Every file anibench writes into a run folder, a report or the suite cache goes through
here, so two rules hold everywhere:

* **Atomic**: the bytes go to a temporary file in the destination's folder, which is then
  renamed over the destination (``os.replace``, atomic on POSIX within one file
  system). A reader sees the old file or the new one, never half of one. ``durable=True``
  also fsyncs the file before the rename and the folder after it, so the new file
  survives a power cut (used for ``results.json`` and ``samples.jsonl``, which mark a
  run as finished; media are re-checked by hash on resume, so they skip the cost).
* **Permissions follow the umask**: temporaries are created with mode ``0o666`` (folders
  ``0o777``) and the kernel applies the process umask, exactly as for a plain
  ``open(path, "w")``. ``tempfile.mkstemp``/``mkdtemp`` create ``0o600``/``0o700``
  whatever the umask, which made runs unreadable to anyone but their owner.

Temporaries are named ``.part-<token>-<name>`` (folders ``.part-<token>-<name>``
too), so :func:`remove_stale_temporaries` can find the ones a killed process left.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

TEMP_PREFIX = ".part-"
# Names earlier anibench versions gave their temporaries (tempfile.mkstemp with these prefixes).
LEGACY_TEMP_PREFIXES = (".samples.jsonl.", ".results.json.")
FILE_MODE = 0o666
DIR_MODE = 0o777


def temporary_name(path: Path) -> Path:
    """A fresh temporary path beside ``path`` (not created)."""
    return path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}")


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one of anibench's write temporaries (current or legacy)."""
    return name.startswith(TEMP_PREFIX) or name.startswith(LEGACY_TEMP_PREFIXES)


def _create_file(path: Path) -> int:
    """Create ``path`` exclusively with mode 0o666 minus the umask; return its descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on a folder
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path (already created, empty) to write ``path`` through a library that wants a name.

    On a clean exit the temporary replaces ``path``; on an exception it is removed and
    ``path`` is untouched. Parent folders are created (with the umask's permissions).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    os.close(_create_file(tmp))
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8", durable: bool = False,
                newline: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` when the block finishes without an error."""
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open writes whole files: mode 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    fd = _create_file(tmp)
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", durable=durable) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | Path, payload: Any, *, durable: bool = True) -> Path:
    """Write ``payload`` as indented, key-sorted JSON atomically (durable by default)."""
    with atomic_open(path, "w", durable=durable) as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        fh.write("\n")
    return Path(path)


def copy_file(source: str | Path, path: str | Path) -> Path:
    """Copy ``source``'s bytes to ``path`` atomically (permissions from the umask, not from ``source``)."""
    with atomic_open(path, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return Path(path)


def make_temporary_dir(path: str | Path) -> Path:
    """Create a temporary folder beside ``path`` (mode 0o777 minus the umask), to be renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    os.mkdir(tmp, DIR_MODE)
    return tmp


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed), waiting for other holders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def temporaries_of(path: str | Path) -> list[Path]:
    """The temporaries :func:`temporary_name` and :func:`make_temporary_dir` made for ``path``."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(TEMP_PREFIX)}[0-9a-f]{{12}}-{re.escape(path.name)}")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


def remove_stale_temporaries(root: str | Path) -> list[Path]:
    """Remove every write temporary under ``root`` (files and folders named as :func:`is_temporary` says).

    Call it only while holding the lock that keeps other writers out of ``root`` (the
    run lock for a run folder): then no temporary there belongs to a live write, and
    each one is what a killed process left. Symbolic links are never followed; SQLite's
    own ``-wal``/``-shm``/``-journal`` files are not temporaries and are left alone.
    Returns what was removed.
    """
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [d for d in dirs if is_temporary(d)]:
            target = Path(folder) / name
            if os.path.islink(target):
                os.unlink(target)
            else:
                shutil.rmtree(target, ignore_errors=True)
            dirs.remove(name)
            removed.append(target)
        for name in files:
            if is_temporary(name):
                target = Path(folder) / name
                try:
                    os.unlink(target)
                except FileNotFoundError:
                    continue
                removed.append(target)
    return sorted(removed)
