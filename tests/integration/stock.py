"""The manual path every operator has, without Backstop: gpg --decrypt | zstd -d | pg_restore."""

from __future__ import annotations

import subprocess
from pathlib import Path

from backstop.connection import Connection
from backstop.tables import TableStats, measure, relations, schemas
from backstop.tools import pg_tool


def stock_restore(ciphertext: bytes, gnupghome: Path, target: Connection,
                  *extra: str) -> None:
    with target.child_env() as env:
        env["GNUPGHOME"] = str(gnupghome)
        plain = subprocess.run(["gpg", "--batch", "--quiet", "--decrypt"], input=ciphertext,
                               capture_output=True, env=env, check=True).stdout
        dump = subprocess.run(["zstd", "-d", "-q", "-c"], input=plain, capture_output=True,
                              check=True).stdout
        subprocess.run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", *extra,
                        f"--dbname={target.conninfo()}"], input=dump, env=env,
                       capture_output=True, check=True)


def snapshot_of(target: Connection) -> dict[str, TableStats]:
    """Every physical table's rows and fingerprint, keyed `schema.name`."""
    with target.connect() as conn:
        physical = [r for r in relations(conn, schemas(conn)) if r.kind == "r"]
        return {f"{t.schema}.{t.name}": t for t in measure(conn, physical, 2**62)}
