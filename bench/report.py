"""The bench's results: per case the median and spread of the rounds, wall time next to the
CPU it cost (the case's programs and the PostgreSQL server), the issues' targets checked
PASS/FAIL, where the CPU goes, and the same as JSON."""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backstop.fingerprint import VERSION
from bench.cases import Case
from bench.measure import Usage

MB = 1e6
RAW, DEFAULT_DUMP, RUNBOOK, LOCAL, S3, STOCK_RESTORE, VERIFY = "a", "b", "c", "d", "e", "f", "h"
COMPOSED = "p"


@dataclasses.dataclass(frozen=True)
class Result:
    case: Case
    runs: tuple[Usage, ...]  # one per round

    def median(self, value: Callable[[Usage], float]) -> float:
        return statistics.median(value(u) for u in self.runs)

    def spread(self, value: Callable[[Usage], float]) -> tuple[float, float]:
        values = [value(u) for u in self.runs]
        return min(values), max(values)

    @property
    def wall(self) -> float:
        return self.median(lambda u: u.wall_s)

    @property
    def cpu(self) -> float:
        return self.median(lambda u: u.cpu_s)

    @property
    def server_cpu(self) -> float:
        return self.median(lambda u: u.server_cpu_s)

    @property
    def output(self) -> int | None:
        sizes = [u.output_bytes for u in self.runs if u.output_bytes is not None]
        return int(statistics.median(sizes)) if sizes else None

    @property
    def rss_main(self) -> int:
        return max(u.rss_main for u in self.runs)

    @property
    def rss_tree(self) -> int:
        return max(u.rss_tree for u in self.runs)

    def reports(self) -> list[dict[str, Any]]:
        """What Backstop printed in each round (`--json`), for the verify case."""
        return [u.outputs[-1]["report"] for u in self.runs if u.outputs]


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    at_most: bool = True  # False: the value must be at least the limit

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.at_most else self.value >= self.limit


@dataclasses.dataclass(frozen=True)
class Run:
    size_gb: float
    database: str
    database_bytes: int
    repeat: int
    load: tuple[float, float]  # 1-minute load average before and after the rounds
    results: tuple[Result, ...]
    cores: int

    def __getitem__(self, key: str) -> Result:
        return next(r for r in self.results if r.case.key == key)

    def checks(self) -> tuple[float, float]:
        """(restore, checks) wall seconds of the verify case, medians: its checks as Backstop's
        report times them, and the rest of the run (process start included) as the restore."""
        verify = self[VERIFY]
        checks = statistics.median(float(r["verify_seconds"]) for r in verify.reports())
        return verify.wall - checks, checks

    @property
    def targets(self) -> list[Target]:
        raw, local, s3 = self[RAW].wall, self[LOCAL], self[S3]
        restored, checks = self.checks()
        verify = self[VERIFY]
        return [
            Target("local wall / raw read", local.wall / raw, 1.5),
            Target("S3 wall / raw read", s3.wall / raw, 1.8),
            Target("local ciphertext / default -Fc size",
                   (local.output or 0) / (self[DEFAULT_DUMP].output or 1), 1.0),
            Target("runbook pipeline wall / local wall", self[RUNBOOK].wall / local.wall, 5.0,
                   at_most=False),
            Target("local Backstop process peak RSS (MB)", local.rss_main / MB, 150),
            Target("S3 Backstop process peak RSS (MB)", s3.rss_main / MB, 150),
            Target("verification found the restore equal (rounds, all must)",
                   sum(bool(r["ok"]) for r in verify.reports()), self.repeat, at_most=False),
            Target("Backstop verify wall / stock 1-job pg_restore wall",
                   verify.wall / self[STOCK_RESTORE].wall, 1.0),
            Target("checks / restore, inside verify", checks / restored, 0.15),
        ]


def render(run: Run) -> str:
    lines = [f"database {run.database}: {run.database_bytes / MB:.0f} MB (pg_database_size); "
             f"median of {run.repeat} interleaved round(s), spread min-max; load average "
             f"{run.load[0]:.1f} before, {run.load[1]:.1f} after ({run.cores} cores)", "",
             *_table(run, [r for r in run.results if not r.case.key.startswith("k")]), ""]
    restored, checks = run.checks()
    lines += [
        f"h split by Backstop's own timing: restore (start, fetch, decrypt, staging, pg_restore)"
        f" {restored:.2f} s, checks {checks:.2f} s",
        *s3_cost(run),
        "wall: process start to exit. cpu: user+sys of the case's programs (Backstop with its",
        "pg_dump, gpg, ...; exact, from wait4). server: CPU of the PostgreSQL server's processes",
        "(exact, /proc). S3: CPU of the moto server. RSS main: peak (VmHWM) of the case's own",
        "program; RSS tree: peak of the sum over all its processes, sampled every 0.1 s; the",
        "servers are not included.",
        "", "fingerprint alone, server CPU (the backup's load on the source beyond the dump):",
        f"  before (v{VERSION - 1}) {run['x0'].server_cpu:.2f} s, now {run['x'].server_cpu:.2f} s "
        f"(wall {run['x0'].wall:.2f} -> {run['x'].wall:.2f} s)",
        "", *budget(run), "", "targets:"]
    for t in run.targets:
        relation = "<=" if t.at_most else ">="
        lines.append(f"  {'PASS' if t.passed else 'FAIL'}  {t.name}: {t.value:.2f} "
                     f"(target {relation} {t.limit:g})")
    return "\n".join(lines)


def s3_cost(run: Run) -> list[str]:
    """The S3 case against the local one: the moto server runs on the same cores as Backstop,
    so its CPU is a cost this bench charges the S3 case that a real S3 does not."""
    local, s3 = run[LOCAL], run[S3]
    moto = s3.median(lambda u: u.s3_cpu_s)
    return [f"{S3} to S3: moto server CPU {moto:.2f} s on these {run.cores} cores (a real S3 "
            f"spends none of them); Backstop {s3.cpu:.2f} s, {s3.cpu - local.cpu:+.2f} over "
            f"the local store ({LOCAL}); PostgreSQL server {s3.server_cpu:.2f} s "
            f"({s3.server_cpu - local.server_cpu:+.2f})"]


def budget(run: Run) -> list[str]:
    """Where the CPU goes, stage by stage (each measured alone, on files), against what the
    whole cost: the floor that the cores put under the wall time."""
    raw = run[RAW]
    # the raw read's own floor: its backend is one process, so at best its CPU seconds
    raw_floor = max(raw.server_cpu, (raw.cpu + raw.server_cpu) / run.cores)
    backup = [("pg_dump's backend (server)", raw.server_cpu), ("pg_dump", raw.cpu),
              ("fingerprint (server)", run["x"].server_cpu), ("compress", run["k2"].cpu),
              ("gpg --encrypt", run["k3"].cpu), ("sha256 of the ciphertext", run["k4"].cpu)]
    restore = [("gpg --decrypt", run["k5"].cpu), ("decompress", run["k6"].cpu),
               ("pg_restore of the plain dump", run["k7"].cpu),
               ("its server side", run["k7"].server_cpu)]
    lines = ["CPU seconds by stage, each alone (k cases below), medians:"]
    for title, stages, case in (("backup", backup, run[LOCAL]),
                                ("verify", restore, run[VERIFY])):
        total = sum(seconds for _, seconds in stages)
        whole = case.cpu + case.server_cpu
        lines.append(f"  {title}: " + ", ".join(f"{name} {s:.2f}" for name, s in stages)
                     + f"; sum {total:.2f}")
        lines.append(f"    {case.case.key} cost {whole:.2f} (Backstop {case.cpu:.2f} + server "
                     f"{case.server_cpu:.2f}); above the stages' sum: {whole - total:+.2f}; "
                     f"on {run.cores} cores the sum alone needs >= {total / run.cores:.2f} s, "
                     f"{total / run.cores / raw_floor:.2f}x the raw read's own floor "
                     f"({raw_floor:.2f} s)")
        if title == "backup":
            composed = run[COMPOSED]
            lines.append(f"    the stages composed by the OS ({COMPOSED}, no fingerprint): "
                         f"{composed.wall:.2f} s, {composed.wall / raw.wall:.2f}x the raw "
                         f"read; {case.case.key}: {case.wall:.2f} s, "
                         f"{case.wall / raw.wall:.2f}x")
    lines += ["", *_table(run, [r for r in run.results if r.case.key.startswith("k")])]
    return lines


def _table(run: Run, results: Sequence[Result]) -> list[str]:
    raw = run[RAW].wall
    default = run[DEFAULT_DUMP].output
    rows = [["", "case", "wall s", "spread", "x raw", "cpu s", "server s", "S3 s", "MB/s",
             "output MB", "x -Fc", "RSS main MB", "RSS tree MB"]]
    for r in results:
        low, high = r.spread(lambda u: u.wall_s)
        out = r.output
        rows.append([
            r.case.key, r.case.title, f"{r.wall:.2f}",
            f"{low:.2f}-{high:.2f}" if len(r.runs) > 1 else "(once)",
            f"{r.wall / raw:.2f}", f"{r.cpu:.2f}", f"{r.server_cpu:.2f}",
            f"{r.median(lambda u: u.s3_cpu_s):.2f}" if r.case.s3 else "-",
            f"{run.database_bytes / MB / r.wall:.0f}",
            "-" if out is None else f"{out / MB:.1f}",
            "-" if out is None or not default else f"{out / default:.2f}",
            f"{r.rss_main / MB:.0f}", f"{r.rss_tree / MB:.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
            for row in rows]


def growth_targets(runs: Sequence[Run]) -> list[Target]:
    """Memory flat with size: the largest database's peak RSS against the smallest's."""
    if len(runs) < 2:
        return []
    small, large = min(runs, key=lambda r: r.size_gb), max(runs, key=lambda r: r.size_gb)
    return [Target(f"{key} peak RSS at {large.size_gb:g} GB / at {small.size_gb:g} GB",
                   large[key].rss_main / small[key].rss_main, 1.1) for key in (LOCAL, S3)]


def render_growth(runs: Sequence[Run], targets: Sequence[Target]) -> str:
    lines = ["growth (medians): size GB, raw read s, local s (x raw), S3 s (x raw) [moto server "
             "CPU s], verify s (x stock restore), RSS local/S3 MB"]
    for run in sorted(runs, key=lambda r: r.size_gb):
        raw = run[RAW].wall
        lines.append(
            f"  {run.size_gb:5g}  {raw:6.2f}  {run[LOCAL].wall:6.2f} ({run[LOCAL].wall / raw:.2f})"
            f"  {run[S3].wall:6.2f} ({run[S3].wall / raw:.2f}) "
            f"[{run[S3].median(lambda u: u.s3_cpu_s):.2f}]  {run[VERIFY].wall:6.2f} "
            f"({run[VERIFY].wall / run[STOCK_RESTORE].wall:.2f})  "
            f"{run[LOCAL].rss_main / MB:.0f}/{run[S3].rss_main / MB:.0f}")
    lines += [f"  {'PASS' if t.passed else 'FAIL'}  {t.name}: {t.value:.2f} (target <= "
              f"{t.limit:g})" for t in targets]
    return "\n".join(lines)


def write_json(path: Path, run: Run) -> None:
    data: dict[str, Any] = {
        "size_gb": run.size_gb, "database": run.database, "database_bytes": run.database_bytes,
        "repeat": run.repeat, "load_average": run.load, "cores": run.cores,
        "cases": {r.case.key: {
            "title": r.case.title, "wall_s": r.wall, "cpu_s": r.cpu,
            "server_cpu_s": r.server_cpu, "s3_cpu_s": r.median(lambda u: u.s3_cpu_s),
            "output_bytes": r.output,
            "rss_main_bytes": r.rss_main, "rss_tree_bytes": r.rss_tree,
            "runs": [{k: v for k, v in dataclasses.asdict(u).items() if k != "outputs"}
                     for u in r.runs],
        } for r in run.results},
        "targets": [{**dataclasses.asdict(t), "passed": t.passed} for t in run.targets],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
