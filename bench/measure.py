"""Run one case's programs and measure them: wall time, each program's peak RSS, and the peak
of the RSS summed over the whole process tree.

A program's peak is the kernel's high-water mark of its own address space (VmHWM), read while
it runs. `ru_maxrss` would not do: Linux carries the spawning process's peak over `exec`, so
every program started from this (larger) Python process would report at least its size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

SAMPLE_SECONDS = 0.1  # the sampler itself must not steal much of 2 cores


@dataclasses.dataclass(frozen=True)
class Step:
    argv: Sequence[str]
    env: Mapping[str, str]
    stdout: Path | None = None  # None: the program prints one JSON report (a bench.one step)


@dataclasses.dataclass(frozen=True)
class Usage:
    wall_s: float  # for a bench.one step, its own timing of the work (imports excluded)
    rss_programs: int  # the largest peak of any one program (VmHWM, last read before its exit)
    rss_tree: int  # sampled: the largest sum over all processes the steps ran at once
    reports: tuple[dict[str, Any], ...]  # what bench.one steps printed


def vm_hwm(pid: int | str = "self") -> int:
    """The peak RSS of a process's address space, in bytes; 0 once it has none (a zombie)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return 0


def run(steps: Sequence[Step]) -> Usage:
    """Run the steps one after another; raise if any fails."""
    wall, rss, tree = 0.0, 0, 0
    reports: list[dict[str, Any]] = []
    for step in steps:
        with _output(step.stdout) as out:
            started = time.perf_counter()
            proc = subprocess.Popen(step.argv, stdout=out, env=dict(step.env))
            with _sampler(proc.pid) as peaks:
                stdout, _ = proc.communicate()
            elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(step.argv[0]).name} exited {proc.returncode}")
        rss = max(rss, *peaks.programs.values(), 0)
        tree = max(tree, peaks.tree)
        if step.stdout is None:
            report = json.loads(stdout)
            reports.append(report)
            elapsed = float(report["wall_s"])
        wall += elapsed
    return Usage(wall, rss, tree, tuple(reports))


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
