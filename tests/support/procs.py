"""The machine's processes, read from /proc (no `ps`: a fresh CI machine may lack procps)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str  # Z: a zombie, already dead
    args: str


def table() -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # fields after the command name, which may itself hold spaces and parentheses
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            args = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            found.append(Proc(int(entry), int(fields[1]), int(fields[2]), fields[0],
                              args.decode(errors="replace").strip()))
    return found


def live() -> list[Proc]:
    return [p for p in table() if p.state != "Z"]
