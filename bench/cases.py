"""What the bench measures: each case is the programs to run, as a user would run them, and
where its output lands. Backstop runs as its own command line (`backstop ... --json`), timed
from process start like the raw tools."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from backstop.connection import Connection
from backstop.fingerprint import VERSION
from backstop.sample import QUOTEPRO_CHECKS
from backstop.tools import pg_tool
from bench.keys import RECIPIENT, BenchKeys
from bench.measure import Step
from bench.s3 import BUCKET

DEVNULL = Path("/dev/null")
BACKSTOP = str(Path(sys.executable).with_name("backstop"))


@dataclasses.dataclass(frozen=True)
class Setup:
    out: Path  # case outputs; emptied at the start of a run
    source: Connection
    tool_env: Mapping[str, str]  # libpq passfile, for pg_dump and pg_restore
    backstop_env: Mapping[str, str]  # BACKSTOP_DATABASE_URL (and fake AWS credentials)
    keys: BenchKeys
    s3_env: Mapping[str, str]  # what points Backstop at the moto server (bench/s3.py)

    @property
    def default_dump(self) -> Path:
        return self.out / "default.dump"

    @property
    def plain_dump(self) -> Path:
        return self.out / "plain.dump"

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
    after: Callable[[], object] | None = None  # untimed clean-up after each run
    s3: bool = False  # count the S3 server's CPU
    once: bool = False  # run in the first round only (slow, and no target rests on its time)


def backup_cases(setup: Setup) -> list[Case]:
    dump = [pg_tool("pg_dump"), f"--dbname={setup.source.conninfo()}"]
    naive_sql, naive_gpg = setup.out / "naive.sql", setup.out / "naive.sql.gpg"
    gpg = ["gpg", "--homedir", str(setup.keys.home), "--batch", "--yes"]
    checks = [f"--check={name}={query}" for name, query in QUOTEPRO_CHECKS.items()]

    def backstop(store: str, env: Mapping[str, str]) -> Step:
        return Step([BACKSTOP, "backup", "--json", "--store", store, "--reason", "bench",
                     "--recipient-key", str(setup.keys.public), *checks], env)

    s3_env = {**setup.backstop_env, **setup.s3_env}
    # Backstop's stages (its compressor, stock gpg, sha256) with nothing of Backstop between
    # them: what the parts cost composed by the OS, against d
    component = [sys.executable, "-m", "bench.component"]
    composed = "set -o pipefail; " + " | ".join(shlex.join(part) for part in (
        [*dump, "-Fc", "-Z0"], [*component, "compress", "-", "-"],
        [*gpg, "--encrypt", "-r", RECIPIENT, "--trust-model", "always", "--compress-algo",
         "none"], [*component, "sha256", "-"]))
    return [
        Case("a", "raw pg_dump -Fc -Z0 > /dev/null (read limit)",
             (Step([*dump, "-Fc", "-Z0"], setup.tool_env, DEVNULL),)),
        Case("b", "pg_dump -Fc (default gzip) to a file",
             (Step([*dump, "-Fc"], setup.tool_env, setup.default_dump),), setup.default_dump,
             once=True),
        Case("c", "runbook: plain pg_dump > file; gpg --encrypt -r",
             (Step(dump, setup.tool_env, naive_sql),
              Step([*gpg, "--encrypt", "-r", RECIPIENT, "-o", str(naive_gpg), str(naive_sql)],
                   setup.tool_env, DEVNULL)), naive_gpg,
             after=lambda: naive_sql.unlink(missing_ok=True), once=True),
        Case("p", "Backstop's stages in a shell pipeline, no fingerprint (pg_dump -Z0 | "
                  "compress | gpg | sha256)",
             (Step(["bash", "-c", composed], setup.tool_env, DEVNULL),)),
        Case("d", "Backstop -> local store", (backstop(str(setup.local_store),
                                                       setup.backstop_env),)),
        Case("e", "Backstop -> S3 (moto on loopback)",
             (backstop(f"s3://{BUCKET}/bench", s3_env),), s3=True),
    ]


def fingerprint_cases(setup: Setup) -> list[Case]:
    """The fingerprint alone, in one snapshot, as a backup takes it: its server CPU is the
    backup's extra load on the source beyond the dump."""
    def fingerprint(version: int) -> Step:
        return Step([sys.executable, "-m", "bench.fingerprint", str(version)],
                    setup.backstop_env)

    return [
        Case("x0", f"fingerprint v{VERSION - 1} alone (the version before)",
             (fingerprint(VERSION - 1),)),
        Case("x", f"fingerprint v{VERSION} alone, as backups take it now",
             (fingerprint(VERSION),)),
    ]


def restore_cases(setup: Setup, fresh_database: Callable[[str], Connection],
                  drop_database: Callable[[str], None]) -> list[Case]:
    """Stock single-job pg_restore of the default dump, and Backstop's verify of the newest
    backup case d made (restore into a scratch database, then every check)."""
    target = setup.source.with_dbname("bench_restore_stock")
    verify = Step([BACKSTOP, "verify", "latest", "--database", setup.source.dbname, "--json",
                   "--store", str(setup.local_store), "--private-key", str(setup.keys.private)],
                  setup.backstop_env)

    return [
        Case("f", "stock pg_restore (1 job) of the default -Fc dump",
             (Step([pg_tool("pg_restore"), "--no-owner", f"--dbname={target.conninfo()}",
                    str(setup.default_dump)], setup.tool_env, DEVNULL),),
             before=lambda: fresh_database(target.dbname),
             after=lambda: drop_database(target.dbname)),
        Case("h", "Backstop verify: restore + checks", (verify,)),
    ]


def component_cases(setup: Setup, fresh_database: Callable[[str], Connection],
                    drop_database: Callable[[str], None]) -> list[Case]:
    """Each stage of Backstop's data path alone, on files, for its exact CPU seconds: the
    budget that bounds how fast the whole can be on this machine's cores."""
    plain = setup.plain_dump
    compressed, encrypted = plain.with_suffix(".dump.zst"), plain.with_suffix(".dump.zst.gpg")
    gpg = ["gpg", "--homedir", str(setup.keys.home), "--batch", "--yes", "--quiet"]
    target = setup.source.with_dbname("bench_restore_plain")

    def stage(name: str, *paths: Path) -> Step:
        return Step([sys.executable, "-m", "bench.component", name, *map(str, paths)],
                    setup.tool_env)

    return [
        Case("k1", "pg_dump -Fc -Z0 to a file (input of the stages below)",
             (Step([pg_tool("pg_dump"), f"--dbname={setup.source.conninfo()}", "-Fc", "-Z0"],
                   setup.tool_env, plain),), plain, once=True),
        Case("k2", "compress it as Backstop does", (stage("compress", plain, compressed),),
             compressed),
        Case("k3", "gpg --encrypt it, no compression",
             (Step([*gpg, "--encrypt", "-r", RECIPIENT, "--trust-model", "always",
                    "--compress-algo", "none", "-o", str(encrypted), str(compressed)],
                   setup.tool_env, DEVNULL),), encrypted),
        Case("k4", "sha256 of the ciphertext", (stage("sha256", encrypted),)),
        Case("k5", "gpg --decrypt the ciphertext",
             (Step([*gpg, "--decrypt", str(encrypted)], setup.tool_env, DEVNULL),)),
        Case("k6", "decompress as Backstop does", (stage("decompress", compressed),)),
        Case("k7", "stock pg_restore (1 job) of the plain dump",
             (Step([pg_tool("pg_restore"), "--no-owner", f"--dbname={target.conninfo()}",
                    str(plain)], setup.tool_env, DEVNULL),),
             before=lambda: fresh_database(target.dbname),
             after=lambda: drop_database(target.dbname), once=True),
    ]
