"""``backstop report`` and ``backstop acknowledge``: the monthly checklist on the command line,
over any store, and the record that a person did an item of the checklist about people; and
the runbook's backup log as CSV (``backstop list --csv``)."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backstop import report, report_html
from backstop.errors import ConfigError, VerificationError
from backstop.report_model import FAIL, Period, Settings
from backstop.store import open_store


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    checklist = commands.add_parser(
        "report", parents=[common], help="the monthly backup verification checklist")
    checklist.add_argument("--month", metavar="YYYY-MM",
                           help="the calendar month (UTC) to report on (default: this month)")
    checklist.add_argument("--settings", metavar="FILE",
                           help="the deployment's configuration (JSON): databases and their "
                                "schedules, RPO, RTO, retention, replication, Object Lock, "
                                "PITR sources (default: every database in the store, daily)")
    checklist.add_argument("--html", metavar="FILE",
                           help="where to write the HTML (default "
                                "./backstop-checklist-<month>.html)")
    checklist.set_defaults(run=cmd_report)

    ack = commands.add_parser("acknowledge", parents=[common],
                              help="record that a checklist item about people was done")
    ack.add_argument("item", choices=sorted(report.PEOPLE_ITEMS))
    ack.add_argument("--by", default=None, help="who did it (default: your user name)")
    ack.add_argument("--note", default="", help="what was done, e.g. 'restore drill, 4 people'")
    ack.set_defaults(run=cmd_acknowledge)


def cmd_report(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    store = open_store(args.store)
    settings = read_settings(args.settings)
    period = Period.month(args.month or f"{now:%Y-%m}", now=now)
    built = report.build(store, settings, period, now=now, sources=sources(settings))
    html = Path(args.html or f"backstop-checklist-{period.label}.html")
    try:
        html.write_text(report_html.render(built))
    except OSError as exc:
        raise ConfigError(f"cannot write {html}: {exc.strerror}; choose another --html") from None
    if args.json:
        print(json.dumps({**built.to_dict(), "html": str(html)}, indent=2))
    else:
        print(built.to_text())
        print(f"HTML: {html}")
    return VerificationError.exit_code if built.status == FAIL else 0


def cmd_acknowledge(args: argparse.Namespace) -> int:
    record = report.acknowledge(open_store(args.store), args.item,
                                by=args.by or getpass.getuser(), note=args.note)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"{args.item} acknowledged {record['at'][:16]} by {record['by']}")
    return 0


def read_settings(path: str | None) -> Settings:
    if path is None:
        return Settings()
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read settings {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"settings {path} is not JSON ({exc}); give the deployment's "
                          "configuration file") from None
    return Settings.from_dict(raw)


def sources(settings: Settings) -> report.Sources:
    """AWS clients only for what the settings ask to watch (the CLI reads no alarms)."""
    import boto3

    pitr = [d.pitr or {} for d in settings.databases]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return report.Sources(
        rds=boto3.client("rds", region_name=region) if any("rds_instance" in p for p in pitr)
        else None,
        secrets=boto3.client("secretsmanager", region_name=region)
        if any("supabase_project" in p for p in pitr) else None)


CSV_COLUMNS = {"Date": "date", "Time": "time", "Type": "type", "Filename": "file",
               "Size": "size", "Reason": "reason", "Verified": "verified", "Stored": "stored",
               "Retention": "retention", "Database": "database", "Status": "status",
               "Backup ID": "id"}


def print_csv(entries: list[dict[str, Any]]) -> None:
    """The runbook's backup log template as CSV: its nine columns, then database, status, id."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([_cell(str(entry[key])) for key in CSV_COLUMNS.values()]
                     for entry in entries)


def _cell(text: str) -> str:
    """A spreadsheet runs a cell that starts like a formula; a reason is text, keep it so."""
    return "'" + text if len(text) > 1 and text[0] in "=+-@\t\r" else text
