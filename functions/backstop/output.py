"""What the command line prints: tables, reports, progress. Every value that came from a
database or a store is shown with its control characters escaped: a table name or a reason
cannot split a log line or send escape sequences to the terminal."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from backstop.errors import escape


def show_report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    report = result["report"]
    verdict = "VERIFIED" if report["ok"] else "VERIFICATION FAILED"
    print(escape(f"backup {result['backup']} -> {report['target']} ({report['mode']}): "
                 f"{verdict}"))
    print_table(["  Table", "Rows in manifest", "Rows restored", "Result"],
                [[f"  {t['table']}", t["expected_rows"], t["restored_rows"], t["result"]]
                 for t in report["tables"]])
    print(f"  tables matched   {report['tables_matched']} of {report['tables_checked']}")
    for line in report["problems"]:
        print(f"  PROBLEM          {escape(line)}")
    for line in report["compared"]:
        print(f"  {'compared':16} {escape(line)}")
    for skip in report["skipped"]:
        print(f"  {'skipped':16} {escape(skip['entry'])}: {escape(skip['reason'])}")
    for line in report["notes"]:
        print(f"  {'note':16} {escape(line)}")
    print(f"  restore time     {report['restore_seconds']:.1f} s "
          f"({report['throughput_mb_s']:.1f} MB/s), checks {report['verify_seconds']:.1f} s")
    if result.get("pre_restore_backup"):
        print(f"  pre-restore      backup {result['pre_restore_backup']} of the old state")
    if "data_loss_window_seconds" in result:
        hours = result["data_loss_window_seconds"] / 3600
        print(f"  data-loss window {hours:.1f} h between the backup's snapshot and the incident")


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[escape(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Meter:
    """Bytes and MB/s on a terminal, at most twice a second."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.start = self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.5:
            self.last = now
            rate = done / (now - self.start) / 1e6
            print(f"\r  {human_size(done)} written, {rate:.1f} MB/s   ", end="", file=sys.stderr)

    def finish(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


