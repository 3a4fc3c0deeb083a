"""Backstop driven as a person drives it: the `backstop` command in a child process, secrets in
environment variables (never argv), a local store directory; and the verdicts judged against
the oracle."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backstop.connection import Connection

COMMAND = ([found] if (found := shutil.which("backstop", path=str(Path(sys.executable).parent)))
           else [sys.executable, "-m", "backstop.cli"])


def url(connection: Connection) -> str:
    return (f"postgresql://{connection.user}:{connection.password}@/{connection.dbname}"
            f"?host={connection.host}&port={connection.port}&sslmode=disable")


@dataclasses.dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def verified(self) -> bool:
        return self.code == 0 and "VERIFIED" in self.out

    def said(self) -> str:
        """What Backstop told the user, in one line: its error, or the report's complaints."""
        if self.err.strip():
            return self.err.strip().splitlines()[-1]
        complaints = [line.strip() for line in self.out.splitlines()
                      if "PROBLEM" in line or "FAILED" in line
                      or (line.startswith("  ") and " equal" not in line
                          and ("rows" in line or "missing" in line))]
        return " | ".join(complaints[:6]) or next(iter(self.out.strip().splitlines()),
                                                  "no output")

    def json(self) -> Any:
        return json.loads(self.out)


class User:
    def __init__(self, store: Path, public_key: Path, private_key: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BACKSTOP_"))}
        self.env.update(BACKSTOP_STORE=str(store), BACKSTOP_RECIPIENT_KEYS=str(public_key),
                        BACKSTOP_PRIVATE_KEY=str(private_key))

    def run(self, *args: str, source: Connection | None = None,
            target: Connection | None = None, scratch: Connection | None = None) -> Result:
        env = dict(self.env)
        for name, connection in (("BACKSTOP_DATABASE_URL", source),
                                 ("BACKSTOP_TARGET_URL", target),
                                 ("BACKSTOP_SCRATCH_URL", scratch)):
            if connection is not None:
                env[name] = url(connection)
        done = subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        return Result(args, done.returncode, done.stdout, done.stderr)

    def backup(self, source: Connection, database: str, *args: str) -> Result:
        return self.run("backup", "--database", database, "--json", "--quiet", *args,
                        source=source)

    def restore(self, backup_id: str, target: Connection, mode: str, *args: str) -> Result:
        return self.run("restore", backup_id, "--mode", mode, *args, target=target)


def table_args(names: tuple[str, ...] | list[str]) -> list[str]:
    return [arg for name in names for arg in ("--table", name)]


def judge(what: str, result: Result, found: list[str]) -> None:
    """A restore or check must succeed and leave the oracle nothing to see; the worst outcome
    is a VERIFIED (exit 0) that the oracle contradicts, and it is said first."""
    if result.code == 0 and found:
        pytest.fail(f"{what}: Backstop exited 0 ({'VERIFIED' if result.verified else 'ok'}) "
                    f"but the oracle saw {len(found)} difference(s): " + "; ".join(found[:8]),
                    pytrace=False)
    if result.code != 0:
        pytest.fail(f"{what}: backstop {' '.join(result.args[:3])} exited {result.code}: "
                    f"{result.said()}; oracle saw {len(found)} difference(s)"
                    + (": " + "; ".join(found[:5]) if found else ""), pytrace=False)
