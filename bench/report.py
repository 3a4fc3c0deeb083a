"""The bench's results: a table with ratios against the raw read, the issue's targets checked
PASS/FAIL, and the same as JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench.cases import Case
from bench.measure import Usage

MB = 1e6
READ_LIMIT, DEFAULT_DUMP = "a", "b"


@dataclasses.dataclass(frozen=True)
class Result:
    case: Case
    usage: Usage  # of the fastest run
    output_bytes: int | None
    rss_main: int  # the Backstop process's own peak in a Backstop case, else the largest tool's
    report: dict[str, Any]  # what the fastest run's Backstop process reported, if any


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    at_most: bool = True  # False: the value must be at least the limit

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.at_most else self.value >= self.limit


def backup_targets(results: dict[str, Result]) -> list[Target]:
    raw = results[READ_LIMIT].usage.wall_s
    local, s3 = results["d"], results["e"]
    return [
        Target("local wall / raw read", local.usage.wall_s / raw, 1.5),
        Target("local ciphertext / default -Fc size",
               (local.output_bytes or 0) / (results[DEFAULT_DUMP].output_bytes or 1), 1.0),
        Target("naive pipeline wall / local wall",
               results["c"].usage.wall_s / local.usage.wall_s, 5.0, at_most=False),
        Target("S3 wall / raw read", s3.usage.wall_s / raw, 1.7),
        Target("local Backstop process peak RSS (MB)", local.rss_main / MB, 150),
        Target("S3 Backstop process peak RSS (MB)", s3.rss_main / MB, 150),
    ]


def restore_only(verify: Result) -> Result:
    """Case g, from case h's own split: the same run without its checks (the library has no
    restore without verification)."""
    checks = float(verify.report["verify_seconds"])
    usage = dataclasses.replace(verify.usage, wall_s=verify.usage.wall_s - checks)
    case = Case("g", "Backstop restore only (h minus its checks)", ())
    return dataclasses.replace(verify, case=case, usage=usage)


def restore_targets(results: dict[str, Result]) -> list[Target]:
    verify, restored = results["h"], results["g"]
    return [
        Target("verification found the restore equal (1 = yes)",
               1.0 if verify.report["ok"] else 0.0, 1, at_most=False),
        Target("stock 1-job pg_restore wall / Backstop verify wall",
               results["f"].usage.wall_s / verify.usage.wall_s, 3.0, at_most=False),
        Target("checks on top of the restore: (h - g) / g",
               (verify.usage.wall_s - restored.usage.wall_s) / restored.usage.wall_s, 0.25),
    ]


@dataclasses.dataclass(frozen=True)
class Run:
    size_gb: float
    database: str
    database_bytes: int
    repeat: int
    load: tuple[float, float]  # 1-minute load average before and after the cases (2 cores)
    results: tuple[Result, ...]
    targets: tuple[Target, ...]


def render(run: Run) -> str:
    lines = [f"database {run.database}: {run.database_bytes / MB:.0f} MB (pg_database_size); "
             f"fastest of {run.repeat} run(s) per case; load average {run.load[0]:.1f} before, "
             f"{run.load[1]:.1f} after", "", *_table(run), ""]
    verify = next((r for r in run.results if r.case.key == "h"), None)
    if verify is not None:
        restore, checks = verify.report["restore_seconds"], verify.report["verify_seconds"]
        lines.append(f"h, as Backstop's report splits it: restore (integrity check, decrypt, "
                     f"staging, pg_restore) {restore:.2f} s, checks {checks:.2f} s, the rest "
                     f"(scratch database, manifest) {verify.usage.wall_s - restore - checks:.2f} s")
    lines += [
        "MB/s: database bytes / wall. RSS main: peak RSS (VmHWM) of the Backstop process itself",
        "in Backstop cases, else of the largest tool. RSS tree: peak of the RSS summed over all",
        "processes the case ran, sampled every 0.1 s; the PostgreSQL server is not included.",
        "", "targets:"]
    for t in run.targets:
        relation = "<=" if t.at_most else ">="
        lines.append(f"  {'PASS' if t.passed else 'FAIL'}  {t.name}: {t.value:.2f} "
                     f"(target {relation} {t.limit:g})")
    return "\n".join(lines)


def _table(run: Run) -> list[str]:
    by_key = {r.case.key: r for r in run.results}
    raw = by_key[READ_LIMIT].usage.wall_s
    default = by_key[DEFAULT_DUMP].output_bytes
    rows = [["", "case", "wall s", "MB/s", "x raw", "output MB", "x -Fc", "RSS main MB",
             "RSS tree MB"]]
    for r in run.results:
        out = r.output_bytes
        rows.append([
            r.case.key, r.case.title, f"{r.usage.wall_s:.2f}",
            f"{run.database_bytes / MB / r.usage.wall_s:.0f}", f"{r.usage.wall_s / raw:.2f}",
            "-" if out is None else f"{out / MB:.1f}",
            "-" if out is None or not default else f"{out / default:.2f}",
            f"{r.rss_main / MB:.0f}", f"{r.usage.rss_tree / MB:.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
            for row in rows]


def write_json(path: Path, run: Run) -> None:
    data: dict[str, Any] = {
        "size_gb": run.size_gb, "database": run.database, "database_bytes": run.database_bytes,
        "repeat": run.repeat, "load_average": run.load,
        "cases": {r.case.key: {
            "title": r.case.title, "wall_s": r.usage.wall_s,
            "mb_per_s": run.database_bytes / MB / r.usage.wall_s, "output_bytes": r.output_bytes,
            "rss_main_bytes": r.rss_main, "rss_tree_bytes": r.usage.rss_tree,
            "backstop_report": r.report,
        } for r in run.results},
        "targets": [{**dataclasses.asdict(t), "passed": t.passed} for t in run.targets],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
