"""Safety for a training run folder (``--out``): one run at a time, SIGTERM like Ctrl-C, no
leftover temporary files, and settings compared by meaning on resume.

    with acquire_run_lock(out), sigterm_as_keyboard_interrupt():
        clean_stale_temporaries(out)
        ...  # train; a KeyboardInterrupt (Ctrl-C or SIGTERM) saves a checkpoint

- :func:`acquire_run_lock` writes ``<out>/.lock`` holding the owner's pid and host. A second run
  on the same folder fails at once with one line naming the folder and the pid; a lock left by
  a process that no longer exists (``kill -9``, power cut) is taken over.
- :func:`clean_stale_temporaries` removes the temporary files an atomic write
  (:func:`~perceptual_utils.model_io.atomic_write`: ``.<name>.perceptual-utils-<random>.tmp``)
  leaves when the process is killed in the middle of it, in the run folder and the subfolders a
  run writes (``previews/``) only: never a user's own ``*.tmp``, never another run's folder
  nested inside. Call it only while holding the lock.
- :func:`sigterm_as_keyboard_interrupt` makes SIGTERM (``kill``, a batch scheduler, ``docker
  stop``) raise ``KeyboardInterrupt`` in the main thread, so the training loop's Ctrl-C path saves
  a resumable checkpoint.
- :func:`changed_settings` compares saved and current training settings, treating two paths to
  the same file (relative vs absolute, ``~``, symlinks) as equal.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .model_io import TEMPORARY_MARK

LOCK_NAME = ".lock"
#: Names :func:`~perceptual_utils.model_io.atomic_write` gives its temporary files (``tempfile.mkstemp``
#: adds 8 random characters between the mark and ``.tmp``).
_TEMPORARY = re.compile(r"^\..+" + re.escape(TEMPORARY_MARK) + r"[a-z0-9_]{8}\.tmp$")
#: The subfolders of a run folder that a training run writes into (preview images).
RUN_SUBFOLDERS = ("previews",)
#: Settings that hold file paths (compared by the file they name).
PATH_SETTINGS = ("style", "data", "style_path", "content", "weights")


class RunFolderLockedError(OSError):
    """Another live process is training into the same run folder (an ``OSError``, so the
    command line prints it as one ``error:`` line)."""


# ----------------------------------------------------------------------------- lock

def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def read_lock(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The lock's contents (``pid``, ``host``) or ``None`` if there is no readable lock."""
    try:
        data = json.loads((Path(out_dir) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _lock_is_live(data: dict[str, Any] | None) -> bool:
    if not data:
        return False
    try:
        pid = int(data.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if data.get("host") not in (None, socket.gethostname()):
        return True  # another machine (shared file system): we cannot tell, so assume it is live
    return pid != os.getpid() and _pid_alive(pid)


@contextlib.contextmanager
def acquire_run_lock(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``<out_dir>/.lock`` for the duration of the ``with`` block (the folder is created).

    Raises:
        RunFolderLockedError: another live process holds the lock (the message names the folder
            and its pid). A stale lock (dead pid, unreadable contents) is taken over.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_NAME
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            data = read_lock(out)
            if _lock_is_live(data):
                raise RunFolderLockedError(
                    f"{out}: run folder is in use by another training run (pid {data.get('pid')} on "
                    f"{data.get('host', 'this machine')}); wait for it to finish or choose another --out") from None
            if data and int(data.get("pid", 0) or 0) == os.getpid():
                break  # re-entrant: this process already holds it
            # Stale: take it over atomically (rename over it), then check nobody else did too.
            tmp = out / f".lock.{os.getpid()}.tmp"
            tmp.write_text(mine)
            os.replace(tmp, lock)
            if read_lock(out) == json.loads(mine):
                break
            continue
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(mine)
            break
    else:
        raise RunFolderLockedError(f"{out}: could not take the run folder's lock (another run is starting)")
    try:
        yield lock
    finally:
        if read_lock(out) == json.loads(mine):
            with contextlib.suppress(OSError):
                lock.unlink()


# ----------------------------------------------------------------------------- temporaries

def clean_stale_temporaries(out_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes (``.<name>.perceptual-utils-<random>.tmp``)
    in ``out_dir`` and its :data:`RUN_SUBFOLDERS`; returns them. Nothing else is touched: not
    recursively (``--out`` may be a project folder holding other runs, live ones included), and
    only names this package's writer makes. Only call it while holding :func:`acquire_run_lock`."""
    root = Path(out_dir)
    if not root.is_dir():
        return []
    removed = []
    for p in (q for folder in (root, *(root / name for name in RUN_SUBFOLDERS)) for q in folder.glob(".*.tmp")):
        if p.is_file() and not p.is_symlink() and _TEMPORARY.match(p.name):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


# ----------------------------------------------------------------------------- SIGTERM

@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (in the main thread), so code that
    saves a checkpoint on Ctrl-C does the same on ``kill``. Outside the main thread (where
    signal handlers cannot be set) it does nothing. The previous handler is restored."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- all three at once

def guard_run_folder(out_dir_arg: str = "out_dir"):
    """Decorator for a training function: while it runs, its run folder (the argument named
    ``out_dir_arg``) is locked and cleaned of stale temporaries (on rank 0 of a ``torchrun`` job,
    i.e. ``$RANK`` unset or 0), and SIGTERM raises ``KeyboardInterrupt`` (every rank)."""
    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            out_dir = signature.bind(*args, **kwargs).arguments[out_dir_arg]
            with contextlib.ExitStack() as stack:
                if os.environ.get("RANK", "0") in ("", "0"):
                    stack.enter_context(acquire_run_lock(out_dir))
                    clean_stale_temporaries(out_dir)
                stack.enter_context(sigterm_as_keyboard_interrupt())
                return fn(*args, **kwargs)

        return wrapper

    return decorate


# ----------------------------------------------------------------------------- settings

def canonical_path(value: Any) -> Any:
    """An absolute, symlink-free form of a path string (``~`` expanded); other values unchanged."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return value
    return str(Path(value).expanduser().resolve())


def _same(key: str, a: Any, b: Any) -> bool:
    if a == b:
        return True
    if key in PATH_SETTINGS and isinstance(a, str) and isinstance(b, str):
        pa, pb = Path(a).expanduser(), Path(b).expanduser()
        if pa.exists() and pb.exists():
            with contextlib.suppress(OSError):
                return os.path.samefile(pa, pb)
        return canonical_path(a) == canonical_path(b)
    return False


def changed_settings(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Keys whose values differ between ``saved`` and ``current`` (sorted), except ``ignore``;
    paths to the same file (:data:`PATH_SETTINGS`) count as equal."""
    skip = set(ignore)
    return sorted(k for k in set(saved) | set(current)
                  if k not in skip and not _same(k, saved.get(k), current.get(k)))


__all__ = ["LOCK_NAME", "PATH_SETTINGS", "RunFolderLockedError", "acquire_run_lock", "read_lock",
           "clean_stale_temporaries", "sigterm_as_keyboard_interrupt", "guard_run_folder", "canonical_path",
           "changed_settings"]
