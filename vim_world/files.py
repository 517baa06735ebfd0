"""File helpers shared by data sets, checkpoints and runs: content hashes, atomic writes,
guarded overwrites, stale temporary directories and run-directory locks.

Nothing here deletes a directory the package did not write: :func:`check_replaceable` refuses
the current directory, its parents and any directory without the package's marker file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_AFTER_S = 24 * 3600
"""A temporary directory ``{prefix}{pid}_*`` is stale when its PID no longer runs, or when it
was last modified more than this many seconds ago (its PID may have been reused by another
process). Names without a PID are never touched: they are not ours."""


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync(path: Path) -> None:
    """Flush a written file to disk (before it is renamed into place)."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_atomically(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it onto ``path``."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def temp_prefix(prefix: str) -> str:
    """``prefix`` + this process's PID, so that :func:`remove_stale_temporaries` can tell
    whether the directory's owner still runs."""
    return f"{prefix}{os.getpid()}_"


def remove_stale_temporaries(directory: Path, prefix: str, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove ``directory/{prefix}{pid}_*`` left by killed processes: those whose PID no longer
    runs, and those unmodified for ``max_age_s`` (a reused PID). Returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    pattern = re.compile(re.escape(prefix) + r"(\d+)_")
    for p in directory.glob(f"{glob_escape(prefix)}*"):
        m = pattern.match(p.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        if not _pid_alive(int(m.group(1))) or time.time() - p.stat().st_mtime > max_age_s:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


@contextmanager
def staged_directory(final: Path, prefix: str) -> Iterator[Path]:
    """A temporary directory beside ``final``, renamed onto it when the block succeeds and
    removed when it fails, so that readers find the old directory or the complete new one.

    The temporary name carries the PID (:func:`temp_prefix`); ones left by killed processes
    are removed first (:func:`remove_stale_temporaries`).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final.parent, prefix)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(prefix), dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_replaceable(path: str | Path, is_ours: Callable[[Path], bool], what: str) -> None:
    """Raise ValueError unless the existing ``path`` may be deleted and replaced: it must be a
    directory that ``is_ours`` recognises (the package's marker file), and neither the current
    directory, one of its parents, nor the home directory."""
    path = Path(path)
    if not path.exists():
        return
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise ValueError(
            f"refusing to replace {str(path)!r}: it is the current directory, a parent of it or the home directory"
        )
    if not path.is_dir() or not is_ours(path):
        raise ValueError(f"refusing to replace {str(path)!r}: it exists and is not a {what}; choose another path")


def check_output_file(path: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """Before any work: ``path``'s parent directory exists, and ``path`` does not unless
    ``overwrite``. Raises FileExistsError / ValueError naming ``flag``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory; expected a file path")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{flag} {str(path)!r} exists; pass --overwrite to replace it")
    return path


class RunLockedError(ValueError):
    """Another process holds the lock of a run directory."""


@contextmanager
def run_lock(directory: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``directory/.lock`` for the block (released when
    the process dies, so a killed trainer leaves no stale lock). Raises :class:`RunLockedError`
    naming the holder's PID when another process holds it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = directory / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"run directory {str(directory)!r} is in use by another process (pid {holder}); "
                "wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # releases the lock
