"""Run one case's programs and measure them: wall time from process start to exit, the CPU
seconds of the programs, of the PostgreSQL server and of the S3 server, and peak memory.

- CPU of the case's programs: `wait4`'s rusage of each program, which includes every
  descendant it waited for (pg_dump, gpg, zstd under Backstop). Exact to the clock tick.
- CPU of a server: the utime+stime of its root process, of every child, and what the root
  already collected from children that exited (cutime+cstime, Linux /proc/PID/stat), read
  before and after the case. The case's backends exit a little after their clients: the
  reading after the case waits until they have been reaped.
- A program's peak RSS is the kernel's high-water mark of its address space (VmHWM), read
  while it runs. `ru_maxrss` would not do: Linux carries the spawning process's peak over
  `exec`, so every program started from this (larger) Python process would report at least
  its size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

SAMPLE_SECONDS = 0.1  # the sampler itself must not steal much of 2 cores
SETTLE_SECONDS = 10.0  # longest wait for a case's backends to be reaped
TICK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Step:
    argv: Sequence[str]
    env: Mapping[str, str]
    stdout: Path | None = None  # None: the program prints one JSON document, kept as output


@dataclasses.dataclass(frozen=True)
class Usage:
    wall_s: float  # process start to exit, summed over the steps
    cpu_s: float  # user+sys of the steps' programs and their waited-for descendants
    server_cpu_s: float  # the PostgreSQL server's processes
    s3_cpu_s: float  # the S3 (moto) server's process
    rss_main: int  # the largest peak (VmHWM) of a step's own program
    rss_tree: int  # sampled: the largest sum over all processes the steps ran at once
    outputs: tuple[Any, ...]  # the JSON each step with stdout=None printed
    output_bytes: int | None = None  # what the case produced (a file, or a stored object)


class Server:
    """CPU seconds of a server's whole process tree, exactly (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def children(self) -> set[int]:
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if _stat(int(entry))[0] == self.pid:
                        found.add(int(entry))
        return found

    def cpu(self) -> tuple[float, set[int]]:
        """(CPU seconds so far, live children). Retried while a child is reaped mid-read."""
        while True:
            before = _stat(self.pid)[1]
            children = self.children()
            ticks = 0
            for pid in children:
                with contextlib.suppress(OSError):  # exited since the listing
                    ticks += sum(_stat(pid)[1])
            after = _stat(self.pid)[1]
            if before == after:
                return (sum(after) + ticks) / TICK, children

    def settled_cpu(self, baseline: set[int]) -> float:
        """CPU seconds once every child that is not in `baseline` is gone (or after a while:
        a background worker that started during the case is then counted as it stands)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            seconds, children = self.cpu()
            if children <= baseline or time.monotonic() > deadline:
                return seconds
            time.sleep(0.02)


def process_cpu(pid: int) -> float:
    """CPU seconds of one live process (all its threads)."""
    return sum(_stat(pid)[1][:2]) / TICK


def _stat(pid: int) -> tuple[int, list[int]]:
    """(ppid, [utime, stime, cutime, cstime]) in clock ticks."""
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), [int(f) for f in fields[11:15]]


def vm_hwm(pid: int | str = "self") -> int:
    """The peak RSS of a process's address space, in bytes; 0 once it has none (a zombie)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return 0


def run(steps: Sequence[Step], server: Server, s3_pid: int | None = None) -> Usage:
    """Run the steps one after another; raise if any fails."""
    wall = cpu = 0.0
    rss = tree = 0
    outputs: list[Any] = []
    server_before, baseline = server.cpu()
    s3_before = process_cpu(s3_pid) if s3_pid else 0.0
    for step in steps:
        with _output(step.stdout) as out:
            started = time.perf_counter()
            proc = subprocess.Popen(step.argv, stdout=out, env=dict(step.env))
            with _sampler(proc.pid) as peaks:
                printed = proc.stdout.read() if proc.stdout is not None else b""
                _, status, usage = os.wait4(proc.pid, 0)
            wall += time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(step.argv[:3])} exited {proc.returncode}")
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, peaks.programs.get(proc.pid, 0))
        tree = max(tree, peaks.tree)
        if step.stdout is None:
            outputs.append(json.loads(printed))
    server_cpu = server.settled_cpu(baseline) - server_before
    s3_cpu = process_cpu(s3_pid) - s3_before if s3_pid else 0.0
    # a Backstop backup prints its manifest, whose size is the stored object's
    size = next((o["size"] for o in outputs if isinstance(o, dict) and "size" in o), None)
    return Usage(wall, cpu, server_cpu, s3_cpu, rss, tree, tuple(outputs), size)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes] | int]:
    if path is None:
        yield subprocess.PIPE
        return
    with open(path, "wb") as handle:
        yield handle


@dataclasses.dataclass
class _Peaks:
    tree: int = 0
    programs: dict[int, int] = dataclasses.field(default_factory=dict)  # pid -> VmHWM


@contextlib.contextmanager
def _sampler(pid: int) -> Iterator[_Peaks]:
    """Sample the process tree under `pid` until the block ends."""
    peaks = _Peaks()
    done = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return  # already gone: nothing to sample
        while not done.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error, OSError):
                        total += proc.memory_info().rss
                        hwm = vm_hwm(proc.pid)
                        peaks.programs[proc.pid] = max(peaks.programs.get(proc.pid, 0), hwm)
            peaks.tree = max(peaks.tree, total)
            done.wait(SAMPLE_SECONDS)

    thread = threading.Thread(target=sample, name="bench-rss", daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()
