"""Running the real `backstop` command as a separate process, hurting it, and checking what
every fault must leave: the exit code, one error line, no secret anywhere, no DONE manifest
for a bad backup, earlier backups untouched, no process or scratch database left behind."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from backstop.processes import temp_roots
from tests.support import procs

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if not line.startswith(
            "backstop: warning:")]


class Cli:
    """`backstop ...` in its own process, with a given environment."""

    def __init__(self, env: dict[str, str], secrets: list[str]) -> None:
        self.env = env
        self.secrets = secrets

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        # SIGINT as a terminal gives it: a suite started in the background (`cmd &` in a
        # script) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
        return subprocess.Popen([sys.executable, "-m", "backstop.cli", *args],
                                env={**self.env, **env}, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def run(self, *args: str, timeout: float = 240, **env: str) -> Result:
        """In its own process: for faults that need one (signals, a child to watch)."""
        started = time.monotonic()
        process = self.start(*args, **env)
        out, err = process.communicate(timeout=timeout)
        return Result(process.returncode, out, err, time.monotonic() - started)

    def call(self, *args: str, **env: str) -> Result:
        """`backstop.cli.main` in this process, with only this environment (faster)."""
        from backstop.cli import main

        saved = dict(os.environ)
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        try:
            os.environ.clear()
            os.environ.update({**self.env, **env})
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as stop:  # argparse's refusals and --help
                    code = int(stop.code or 0)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return Result(code, out.getvalue(), err.getvalue(), time.monotonic() - started)

    def hurt(self, args: list[str], when: Callable[[int], bool], sig: int,
             **env: str) -> Result:
        """Start a command, wait until `when(pid)` holds, send `sig`, collect the result."""
        started = time.monotonic()
        process = self.start(*args, **env)
        deadline = time.monotonic() + 120
        while not when(process.pid):
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate()
                raise AssertionError(f"never reached the phase (exit {process.returncode}): "
                                     f"{err[-2000:]}")
            time.sleep(0.02)
        process.send_signal(sig)
        out, err = process.communicate(timeout=120)
        return Result(process.returncode, out, err, time.monotonic() - started)


def children(pid: int) -> list[tuple[int, str]]:
    """Descendants of `pid` (any depth) with their command lines."""
    everyone = procs.table()
    found: list[tuple[int, str]] = []
    frontier = {pid}
    while frontier:
        layer = [p for p in everyone if p.ppid in frontier]
        found += [(p.pid, p.args) for p in layer]
        frontier = {p.pid for p in layer}
    return found


def running(command: str) -> Callable[[int], bool]:
    """A phase: a child whose command line contains `command` is running."""
    return lambda pid: any(command in args for _, args in children(pid))


def leftover_processes(marker: str, *, within: float = 10) -> list[str]:
    """Live (non-zombie) processes whose command line names `marker`, after a grace time in
    which the kernel delivers the parent-death signal and workers notice."""
    deadline = time.monotonic() + within
    while True:
        live = [f"{p.pid} {p.args}" for p in procs.live()
                if marker in p.args and p.pid != os.getpid()]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.2)


def own_temp_dirs() -> list[Path]:
    return [p for root in temp_roots() for p in root.glob("backstop-[0-9]*-*")]


def orphans(*, within: float = 5) -> list[str]:
    """What Backstop processes that are gone left: private directories (keyrings,
    passfiles, staged dumps) and gpg-agents serving a keyring there. Live processes' own
    (other tests on this machine) are not orphans, nor is what a process that just finished is
    still removing: the answer must hold for `within` seconds (0: look once)."""
    deadline = time.monotonic() + within
    while True:
        left = [str(d) for d in own_temp_dirs()
                if not _alive(int(d.name.split("-")[1])) and d.exists()]
        for process in procs.live():
            owner = re.search(r"--homedir \S*/backstop-(\d+)-gpg-", process.args)
            if owner and "gpg-agent" in process.args and not _alive(int(owner.group(1))):
                left.append(f"{process.pid} {process.args}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@dataclasses.dataclass
class StoreState:
    files: dict[str, str]

    @classmethod
    def of(cls, root: Path) -> StoreState:
        files = {}
        if root.exists():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    files[path.relative_to(root).as_posix()] = hashlib.sha256(
                        path.read_bytes()).hexdigest()
        return cls(files)

    def done_manifests(self, root: Path) -> set[str]:
        done = set()
        for key in self.files:
            if key.endswith(".manifest.json"):
                with contextlib.suppress(ValueError):
                    if json.loads((root / key).read_bytes()).get("status") == "DONE":
                        done.add(key)
        return done


def assert_held(result: Result, *, code: int | tuple[int, ...], says: str, secrets: list[str],
                store: Path | None = None, before: StoreState | None = None,
                marker: str | None = None) -> None:
    """The invariants every fault must keep."""
    codes = code if isinstance(code, tuple) else (code,)
    assert result.code in codes, (result.code, result.err)
    lines = result.error_lines()
    assert len(lines) == 1 and lines[0].startswith("backstop: error: "), result.err
    assert says in lines[0], lines[0]
    assert "Traceback" not in result.err
    for secret in secrets:
        assert secret not in result.out + result.err
    if store is not None and before is not None:
        after = StoreState.of(store)
        # earlier backups untouched (manifests and the index record the failure)
        for key, digest in before.files.items():
            if not key.endswith(".manifest.json") and not key.startswith("index/"):
                assert after.files.get(key) == digest, key
        assert after.done_manifests(store) == before.done_manifests(store)
        for key in after.files:
            data = (store / key).read_bytes()
            assert not any(s.encode() in data for s in secrets), key
    if marker is not None:
        assert leftover_processes(marker) == []
    assert orphans() == []  # no keyring, agent, passfile or staged dump of a dead run


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP endpoint that accepts connections and never answers: a stalled server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    server.settimeout(0.2)
    stop = False

    def accept() -> None:
        while not stop:
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    import threading

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop = True
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A moto S3 server in its own process, which a test may pause (SIGSTOP) or kill."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
        yield process, endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.wait()
