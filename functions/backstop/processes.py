"""Child processes and temporary files that cannot outlive Backstop, or leak through it.

- Every child starts in its own process group, with only the environment it needs, and (on
  Linux) is killed by the kernel if Backstop dies, even by SIGKILL. When Backstop stops on its
  own, on an error, SIGINT or SIGTERM, it kills each child's whole group (pg_restore's `-j`
  workers included).
- Temporary directories are private (0700), in memory where the platform has it (/dev/shm),
  named after the process that made them, and swept at start when that process is gone.
- SIGTERM (what `timeout`, systemd and Lambda send) is handled like SIGINT.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# What a child may inherit; everything else (BACKSTOP_DATABASE_URL, PGPASSWORD, AWS keys)
# stays in Backstop.
CHILD_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "HOME")
_PREFIX = "backstop-"
MEMORY = Path("/dev/shm")  # noqa: S108 - tmpfs; each directory is made 0700 by mkdtemp
_OWN = re.compile(r"^backstop-(\d+)-[a-z]+-")
_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)
_children: set[subprocess.Popen[Any]] = set()
_lock = threading.Lock()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where SIGINT raises KeyboardInterrupt, so the same
    cleanup runs for both."""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in CHILD_ENV}
    env.update(extra)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) \
    if sys.platform == "linux" else None


def popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a child in its own process group that dies with Backstop."""
    kwargs.setdefault("env", child_env())
    process = subprocess.Popen(list(args), process_group=0,
                               preexec_fn=_die_with_parent if _libc else None, **kwargs)
    with _lock:
        _children.add(process)
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    """Kill the child's whole process group and reap it."""
    # The group outlives its leader while a worker lives: kill it even if the leader is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.wait()
    with _lock:
        _children.discard(process)


def run(args: Sequence[str], **kwargs: Any) -> int:
    """Run a child to its end and return its exit code; an interruption kills its group."""
    process = popen(args, **kwargs)
    try:
        code = process.wait()
    finally:
        stop(process)
    return code


def stop_all() -> None:
    with _lock:
        live = list(_children)
    for process in live:
        stop(process)


def handle_signals() -> Callable[[], None]:
    """SIGTERM as SIGINT, for the main thread of a command-line run; returns what undoes it.
    Threads report their exceptions as one scrubbed log line, not a traceback."""
    def terminate(signum: int, frame: object) -> None:
        raise Terminated("SIGTERM")

    def report(args: threading.ExceptHookArgs) -> None:
        log.error("%s in thread %s: %s", args.exc_type.__name__,
                  args.thread.name if args.thread else "?", args.exc_value)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous, previous_hook = signal.signal(signal.SIGTERM, terminate), threading.excepthook
    threading.excepthook = report

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)
        threading.excepthook = previous_hook

    return undo


def temp_roots() -> list[Path]:
    """Where private directories go: memory first (never on a disk), then the usual place."""
    memory = [MEMORY] if MEMORY.is_dir() and os.access(MEMORY, os.W_OK) else []
    return [*memory, Path(tempfile.gettempdir())]


def make_private_dir(purpose: str, parent: Path | None = None) -> Path:
    base = parent or temp_roots()[0]
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{purpose}-", dir=base))


@contextlib.contextmanager
def private_dir(purpose: str, parent: Path | None = None) -> Iterator[Path]:
    """A 0700 directory that only Backstop's user can enter, removed on every exit path."""
    path = make_private_dir(purpose, parent)
    try:
        yield path
    finally:
        remove_dir(path)


def private_file(path: Path) -> Any:
    """Create `path` for writing, 0600, never over an existing file or through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def remove_dir(path: Path) -> None:
    """Stop a gpg-agent a keyring directory may hold, then delete the directory."""
    if (path / "S.gpg-agent").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["gpgconf", "--homedir", str(path), "--kill", "gpg-agent"],
                           capture_output=True, check=False, timeout=10, env=child_env())
    shutil.rmtree(path, ignore_errors=True)


def sweep_temp_dirs(roots: Sequence[Path] | None = None) -> list[Path]:
    """Delete the private directories of Backstop processes that are gone (killed: nothing
    else could delete them), with the agents they started. Returns what was removed."""
    removed = []
    for root in roots or temp_roots():
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                match = _OWN.match(entry.name)
                if not match or not entry.is_dir(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                if alive(int(match.group(1))):
                    continue
                remove_dir(Path(entry.path))
                removed.append(Path(entry.path))
                log.info("removed %s, left by a Backstop that was killed", entry.path)
    return removed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

