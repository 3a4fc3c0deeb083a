"""`make bench` (`python -m bench [--size-gb N] [--repeat N]`): Backstop against the raw tools
on a generated QuotePro-like database, in one run.

Everything lives in `.bench/`: the PostgreSQL cluster (the generated database is reused while
the size matches), the throwaway key pair, the case outputs and `results-<size>gb.json`.
Exits 1 when a target of the issues fails.
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
from bench.cases import Case, Setup, backup_cases, restore_cases
from bench.keys import bench_keys, signing_key
from bench.s3 import AWS_ENV, moto_server
from bench.server import BenchServer

WORK = Path(".bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0,
                        help="database size on disk (default 1; the issue also asks for 0.25)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per case; the fastest counts (default 1)")
    args = parser.parse_args(argv)

    work = WORK.resolve()
    server = BenchServer(work / "pgdata")
    try:
        source, db_bytes = server.sample_database(int(args.size_gb * 1e9))
        load_before = os.getloadavg()[0]
        results = run_cases(work, server, source, args.repeat)
    finally:
        server.stop()
    by_key = {r.case.key: r for r in results}
    run = report.Run(args.size_gb, source.dbname, db_bytes, args.repeat,
                     (load_before, os.getloadavg()[0]), tuple(results),
                     (*report.backup_targets(by_key), *report.restore_targets(by_key)))
    print(report.render(run))
    path = work / f"results-{args.size_gb:g}gb.json"
    report.write_json(path, run)
    print(f"\nwritten: {path}")
    return 0 if all(t.passed for t in run.targets) else 1


def run_cases(work: Path, server: BenchServer, source: Connection,
              repeat: int) -> list[report.Result]:
    keys = bench_keys(work)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    with source.child_env() as tool_env, moto_server(work / "moto.log") as endpoint:
        backstop_env = {**tool_env, **AWS_ENV, "BACKSTOP_DATABASE_URL": database_url(source),
                        "BACKSTOP_SIGNING_KEY_FILE": str(signing_key(work))}
        setup = Setup(out, source, tool_env, backstop_env, keys, endpoint)
        cases = backup_cases(setup)
        print("bench: warming the page cache with one raw read", flush=True)
        measure.run(cases[0].steps)
        results = [run_case(case, repeat) for case in cases]
        backup_id = next(r.report["backup_id"] for r in results if r.case.key == "d")
        stock, verify = (run_case(case, repeat)
                         for case in restore_cases(setup, backup_id, server.create_database))
    return [*results, stock, report.restore_only(verify), verify]


def run_case(case: Case, repeat: int) -> report.Result:
    print(f"bench: {case.key}. {case.title}", flush=True)
    runs = []
    for _ in range(repeat):
        if case.before is not None:
            case.before()
        runs.append(measure.run(case.steps))
    best = min(runs, key=lambda u: u.wall_s)
    usage = dataclasses.replace(best, rss_programs=max(u.rss_programs for u in runs),
                                rss_tree=max(u.rss_tree for u in runs))
    main_rss = max(max((int(r["rss_self"]) for r in u.reports), default=u.rss_programs)
                   for u in runs)
    own = best.reports[-1] if best.reports else {}
    if case.output is not None:
        output: int | None = case.output.stat().st_size
    else:
        output = own.get("output_bytes")
    return report.Result(case, usage, output, main_rss, own)


def database_url(source: Connection) -> str:
    """For BACKSTOP_DATABASE_URL, which reaches bench.one through its environment only."""
    assert source.password is not None
    return (f"postgresql://{quote(source.user)}:{quote(source.password, safe='')}@/"
            f"{quote(source.dbname)}?host={quote(source.host, safe='')}&port={source.port}"
            f"&sslmode={source.sslmode}")


if __name__ == "__main__":
    sys.exit(main())
