"""What the bench measures: each case is the programs to run and where its output lands."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from backstop.connection import Connection
from backstop.tools import pg_tool
from bench.keys import RECIPIENT, BenchKeys
from bench.measure import Step
from bench.s3 import BUCKET

DEVNULL = Path("/dev/null")


@dataclasses.dataclass(frozen=True)
class Setup:
    out: Path  # case outputs; emptied at the start of a run
    source: Connection
    tool_env: Mapping[str, str]  # libpq passfile, for pg_dump and pg_restore
    backstop_env: Mapping[str, str]  # BACKSTOP_DATABASE_URL (and fake AWS credentials)
    keys: BenchKeys
    endpoint: str  # the moto server

    @property
    def default_dump(self) -> Path:
        return self.out / "default.dump"

    @property
    def local_store(self) -> Path:
        return self.out / "store"


@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    title: str
    steps: tuple[Step, ...]
    output: Path | None = None  # the file whose size is the case's output, if not reported
    before: Callable[[], object] | None = None  # untimed preparation before each run


def backup_cases(setup: Setup) -> list[Case]:
    dump = [pg_tool("pg_dump"), f"--dbname={setup.source.conninfo()}"]
    naive_sql, naive_gpg = setup.out / "naive.sql", setup.out / "naive.sql.gpg"
    gpg = ["gpg", "--homedir", str(setup.keys.home), "--batch", "--yes"]

    def backstop(store: str, *extra: str) -> Step:
        return Step([sys.executable, "-m", "bench.one", "backup", "--store", store,
                     "--recipient-key", str(setup.keys.public), *extra], setup.backstop_env)

    return [
        Case("a", "raw pg_dump -Fc -Z0 > /dev/null (read limit)",
             (Step([*dump, "-Fc", "-Z0"], setup.tool_env, DEVNULL),)),
        Case("b", "pg_dump -Fc (default gzip) to a file",
             (Step([*dump, "-Fc"], setup.tool_env, setup.default_dump),), setup.default_dump),
        Case("c", "runbook: plain pg_dump > file; gpg --encrypt -r",
             (Step(dump, setup.tool_env, naive_sql),
              Step([*gpg, "--encrypt", "-r", RECIPIENT, "-o", str(naive_gpg), str(naive_sql)],
                   setup.tool_env, DEVNULL)), naive_gpg),
        Case("d", "Backstop -> local store", (backstop(str(setup.local_store)),)),
        Case("e", "Backstop -> S3 (moto on loopback)",
             (backstop(f"s3://{BUCKET}/bench", "--endpoint", setup.endpoint),)),
    ]


def restore_cases(setup: Setup, backup_id: str,
                  fresh_database: Callable[[str], Connection]) -> list[Case]:
    """Stock single-job pg_restore of the default dump, and Backstop's verify of the backup
    that case d made (restore into a scratch database, then counts, fingerprints, checks)."""
    target = setup.source.with_dbname("bench_restore_stock")
    return [
        Case("f", "stock pg_restore (1 job) of the default -Fc dump",
             (Step([pg_tool("pg_restore"), "--no-owner", f"--dbname={target.conninfo()}",
                    str(setup.default_dump)], setup.tool_env, DEVNULL),),
             before=lambda: fresh_database(target.dbname)),
        Case("h", "Backstop verify: restore + checks",
             (Step([sys.executable, "-m", "bench.one", "verify", "--store", str(setup.local_store),
                    "--backup-id", backup_id, "--private-key", str(setup.keys.private)],
                   setup.backstop_env),)),
    ]
