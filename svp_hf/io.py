"""Atomic writes: an output folder appears complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import OutputExistsError, OutputPathError


def check_output_path(
    path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[Any] = (), resumable: bool = False
) -> Path:
    """Refuse an output folder before any work: one that exists (unless ``overwrite``, or ``resumable`` for a run that
    continues in it), one that is, holds or lies inside an input (``inputs``: paths, or datasets whose Arrow files
    are checked), one under a file, or one in a folder this process cannot write. Returns the absolute path."""
    path = Path(path).expanduser().absolute()
    real = path.resolve()
    for source in input_locations(inputs):
        if real == source or source.is_relative_to(real) or real.is_relative_to(source):
            relation = "is" if real == source else "holds" if source.is_relative_to(real) else "lies inside"
            raise OutputPathError(
                f"output directory {path} {relation} the input {source}; writing it could destroy the input: "
                "choose an output folder outside the input data"
            )
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(f"output {path} is a file, not a folder; choose another --output-dir")
        if not (overwrite or resumable):
            raise OutputExistsError(f"output directory {path} already exists; choose another or pass --overwrite")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"cannot create {path}: {parent} is a file; choose another --output-dir")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in {parent} (permission denied); choose another --output-dir")
    return path


def source_id(source: str | os.PathLike) -> str:
    """How a run records where its data came from: an existing local path as an absolute path (so that a later
    command finds it from any folder), anything else (a Hub id) unchanged."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else str(source)


def input_locations(inputs: Iterable[Any]) -> list[Path]:
    """The local paths behind ``inputs``: existing paths as given, and the folders of a dataset's Arrow files."""
    found: list[Path] = []
    for item in inputs:
        if item is None:
            continue
        if isinstance(item, (str, os.PathLike)):
            candidate = Path(item).expanduser()
            if candidate.exists():
                found.append(candidate.resolve())
            continue
        for cache in getattr(item, "cache_files", None) or ():
            filename = cache.get("filename") if isinstance(cache, dict) else None
            if filename:
                found.append(Path(filename).resolve().parent)
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path``, on error removed.

    With ``overwrite=True`` an existing ``path`` is replaced only after the new content is complete.
    Parent folders created for it are removed again if the write fails.
    """
    path = Path(path).absolute()
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output directory {path} already exists; choose another or pass --overwrite")
    created = []
    parent = path.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(path.parent, f".{path.name}.tmp-")  # left by a run that was killed while writing
    remove_stale_temp(path.parent, f".{path.name}.old-")
    tmp = owned_temp_dir(path.parent, f".{path.name}.tmp-")
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any other folder
    try:
        yield tmp
        with _swap_lock(path):  # one writer at a time swaps a folder into place
            if path.exists():
                if not overwrite:  # it appeared while this run worked: never replace another run's result
                    raise OutputExistsError(
                        f"output directory {path} appeared while this run was working (another run wrote it); "
                        "nothing was replaced: choose another --output-dir or pass --overwrite"
                    )
                trash = owned_temp_dir(path.parent, f".{path.name}.old-")
                os.replace(path, trash / path.name)
                os.replace(tmp, path)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


# Temporary folders carry their writer's pid and host (``PREFIX<pid>.<host>.<random>``), so that a later run finds
# the ones whose writer was killed (SIGKILL leaves them behind) and removes them; a live writer's are never touched.
def owned_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent`` with a name that says which process owns it."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.{_host()}.", dir=parent))


@contextlib.contextmanager
def scratch_dir(prefix: str, parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A temporary folder (in the system's temp folder by default) removed on exit; ones left by killed runs with
    the same ``prefix`` are removed on entry."""
    parent = Path(parent or tempfile.gettempdir())
    remove_stale_temp(parent, prefix)
    tmp = owned_temp_dir(parent, prefix)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temp(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the folders ``owned_temp_dir(parent, prefix)`` made for processes of this host that no longer run."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        owner = _OWNER.match(entry.name[len(prefix) :])
        if owner is None or owner["host"] != _host() or _pid_alive(int(owner["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


_OWNER = re.compile(r"^(?P<pid>\d+)\.(?P<host>[A-Za-z0-9-]+)\.[^.]*$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def _swap_lock(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """An exclusive lock file beside ``path`` (``.NAME.lock``, holding the writer's pid) while a folder is swapped into
    place. A lock whose process is gone is stale and taken over."""
    import time

    lock = path.parent / f".{path.name}.lock"
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            if not _lock_alive(lock):
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                continue
            if time.monotonic() > deadline:
                raise OutputExistsError(
                    f"another run is writing {path} (lock {lock}); wait or remove the lock"
                ) from None
            time.sleep(0.05)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)


def _lock_alive(lock: Path) -> bool:
    try:
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return True  # being written right now
    return _pid_alive(pid)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, parent folders created); on success it is renamed onto
    ``path``, on error removed. Readers see the old file or the complete new one, never a partial write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
