"""`make bench` (`python -m bench [--size-gb N ...] [--repeat N]`): Backstop against the raw
tools on a generated QuotePro-like database.

Each round runs every case once, in a fixed order, so that a change in the machine's load
falls on all cases alike; the report gives each case's median and spread over the rounds.
Everything lives in `.bench/`: the PostgreSQL cluster (generated databases are reused), the
throwaway key pair, the case outputs and `results-<size>gb.json`. Exits 1 when a target of
the issues fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

from backstop.connection import Connection
from bench import measure, report
from bench.cases import (
    Case,
    Setup,
    backup_cases,
    component_cases,
    fingerprint_cases,
    restore_cases,
)
from bench.keys import bench_keys, signing_key
from bench.s3 import AWS_ENV, moto_server
from bench.server import BenchServer

WORK = Path(".bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, action="append",
                        help="database size on disk; repeat for a growth table "
                             "(default 1; the issue also asks for 0.25 and 2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every case; medians are reported (default 3)")
    args = parser.parse_args(argv)

    work = WORK.resolve()
    server = BenchServer(work / "pgdata")
    runs = []
    try:
        for size in args.size_gb or [1.0]:
            source, db_bytes = server.sample_database(int(size * 1e9))
            load_before = os.getloadavg()[0]
            results = run_rounds(work, server, source, args.repeat)
            run = report.Run(size, source.dbname, db_bytes, args.repeat,
                             (load_before, os.getloadavg()[0]), results, os.cpu_count() or 1)
            print(report.render(run), flush=True)
            path = work / f"results-{size:g}gb.json"
            report.write_json(path, run)
            print(f"\nwritten: {path}\n", flush=True)
            runs.append(run)
    finally:
        server.stop()
    growth = report.growth_targets(runs)
    if len(runs) > 1:
        print(report.render_growth(runs, growth))
    return 0 if all(t.passed for r in runs for t in r.targets) and all(
        t.passed for t in growth) else 1


def run_rounds(work: Path, server: BenchServer, source: Connection,
               repeat: int) -> tuple[report.Result, ...]:
    keys = bench_keys(work)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    postgres = measure.Server(server.postmaster_pid())
    with source.child_env() as tool_env, moto_server(work) as (_, s3_env, s3_pid):
        backstop_env = {**tool_env, **AWS_ENV, "BACKSTOP_DATABASE_URL": database_url(source),
                        "BACKSTOP_SIGNING_KEY_FILE": str(signing_key(work))}
        setup = Setup(out, source, tool_env, backstop_env, keys, s3_env)
        cases = [*backup_cases(setup), *fingerprint_cases(setup),
                 *restore_cases(setup, server.create_database, server.drop),
                 *component_cases(setup, server.create_database, server.drop)]
        print("bench: warming the page cache with one raw read", flush=True)
        measure.run(cases[0].steps, postgres)
        runs: dict[str, list[measure.Usage]] = {case.key: [] for case in cases}
        for round_ in range(1, repeat + 1):
            for case in (c for c in cases if round_ == 1 or not c.once):
                print(f"bench: round {round_}/{repeat}, {case.key}. {case.title}", flush=True)
                runs[case.key].append(run_case(case, postgres, s3_pid))
    return tuple(report.Result(case, tuple(runs[case.key])) for case in cases)


def run_case(case: Case, postgres: measure.Server, s3_pid: int) -> measure.Usage:
    if case.before is not None:
        case.before()
    usage = measure.run(case.steps, postgres, s3_pid if case.s3 else None)
    if case.output is not None:
        usage = dataclasses.replace(usage, output_bytes=case.output.stat().st_size)
    if case.after is not None:
        case.after()
    return usage


def database_url(source: Connection) -> str:
    """For BACKSTOP_DATABASE_URL, which reaches Backstop through its environment only."""
    assert source.password is not None
    return (f"postgresql://{quote(source.user)}:{quote(source.password, safe='')}@/"
            f"{quote(source.dbname)}?host={quote(source.host, safe='')}&port={source.port}"
            f"&sslmode={source.sslmode}")


if __name__ == "__main__":
    sys.exit(main())
