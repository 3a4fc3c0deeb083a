"""`backstop`: the command line over the library. Each command parses, calls one library
function and prints; errors become one line on stderr and a distinct exit code."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backstop import catalog, names, profiles, report_cli, restore
from backstop.backup import FINGERPRINT_LIMIT, BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import BackstopError, ConfigError, VerificationError
from backstop.manifest import RETENTION_CLASSES, SCOPE_MODES, Manifest, Scope
from backstop.restore import RESTORE_MODES
from backstop.store import ObjectStore, open_store

RETENTION_POLICY = {"daily": "7 days", "weekly": "30 days", "monthly": "12 months",
                    "pre-migration": "permanent", "pre-restore": "permanent",
                    "manual": "as configured"}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="backstop: %(message)s")
    try:
        result: int = args.run(args)
        return result
    except BackstopError as exc:
        print(f"backstop: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("backstop: interrupted; nothing was recorded as done", file=sys.stderr)
        return 130


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="backstop", description="PostgreSQL backups that prove they restore.")
    commands = top.add_subparsers(required=True, metavar="command")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=os.environ.get("BACKSTOP_STORE", "backups"),
                        help="local directory or s3://bucket/prefix (env BACKSTOP_STORE; "
                             "default ./backups)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    backup = commands.add_parser("backup", parents=[common], help="take a backup")
    source_options(backup)
    backup.add_argument("--database", help="logical name used in keys and the log "
                                           "(default: the database's own name)")
    backup.add_argument("--scope", choices=SCOPE_MODES, default="full")
    backup.add_argument("--table", action="append", default=[], metavar="NAME",
                        help="hold only these tables' rows, with every definition (repeat, "
                             'or comma-separated; schema.table, quoted: s."My.Table")')
    backup.add_argument("--exclude-table", action="append", default=[], metavar="NAME",
                        help="leave out these tables entirely (repeat, or comma-separated)")
    backup.add_argument("--schema", action="append", default=[], metavar="NAME",
                        help="only these schemas (repeat, or comma-separated)")
    backup.add_argument("--exclude-schema", action="append", default=[], metavar="NAME",
                        help="leave out these schemas entirely")
    backup.add_argument("--profile", choices=tuple(profiles.PROFILES), default="plain",
                        help="what the source is: plain (every schema) or supabase (what a "
                             "Supabase project's owner means by the database; docs/supabase.md)")
    backup.add_argument("--retention", choices=RETENTION_CLASSES, default="manual")
    backup.add_argument("--reason", default="manual backup")
    backup.add_argument("--recipient-key", action="append", metavar="FILE",
                        help="armored OpenPGP public key file (repeat for several "
                             "recipients; env BACKSTOP_RECIPIENT_KEYS, ':'-separated)")
    backup.add_argument("--check", action="append", default=[], metavar="NAME=SQL",
                        help="health query (one value) recorded in the snapshot and "
                             "required to be equal after a restore (repeat)")
    backup.add_argument("--fingerprint-limit-mb", type=int, metavar="MB",
                        default=FINGERPRINT_LIMIT // 2**20,
                        help="tables larger than this get a row count but no content "
                             "fingerprint (default %(default)s; 0: counts only)")
    backup.add_argument("--quiet", action="store_true", help="no progress output")
    backup.set_defaults(run=cmd_backup)

    listing = commands.add_parser("list", parents=[common], help="the backup log")
    listing.add_argument("--database")
    listing.add_argument("--csv", action="store_true",
                         help="CSV in the runbook's backup log columns")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", parents=[common], help="one backup's manifest")
    show.add_argument("backup_id")
    show.set_defaults(run=cmd_show)

    chooser = argparse.ArgumentParser(add_help=False, parents=[common])
    chooser.add_argument("backup", help="a backup id, or 'latest' (with --database)")
    chooser.add_argument("--database", help="which database's backups 'latest' means")
    chooser.add_argument("--before", type=timestamp, metavar="TIME",
                         help="the newest backup taken before this ISO time")
    chooser.add_argument("--private-key", metavar="FILE",
                         help="armored OpenPGP private key (env BACKSTOP_PRIVATE_KEY)")

    restoring = commands.add_parser("restore", parents=[chooser],
                                  help="restore a backup into a database, then verify it")
    restoring.add_argument("--target-url", help="postgresql:// URL of the target, without a "
                                              "password (env BACKSTOP_TARGET_URL may hold one)")
    restoring.add_argument("--mode", choices=RESTORE_MODES, default="full")
    restoring.add_argument("--table", action="append", default=[], metavar="NAME",
                         help="the tables to restore (--mode tables), or to narrow data-only "
                              'and schema-only to (schema.table, quoted: s."My.Table")')
    restoring.add_argument("--confirm", metavar="DATABASE",
                         help="required when the target already has tables: its name")
    restoring.add_argument("--incident-at", type=timestamp, metavar="TIME",
                         help="report the data-loss window up to this ISO time")
    restoring.add_argument("--recipient-key", action="append", metavar="FILE",
                         help="public key(s) for the pre-restore backup of a non-empty target")
    restoring.set_defaults(run=cmd_restore)

    verifying = commands.add_parser("verify", parents=[chooser],
                                    help="restore into a scratch database, verify, drop it")
    verifying.add_argument("--scratch-url", help="server to create the scratch database on, "
                                                 "without a password (env BACKSTOP_SCRATCH_URL;"
                                                 " default: the database server itself)")
    source_options(verifying)
    verifying.set_defaults(run=cmd_verify)

    checking = commands.add_parser("check", parents=[chooser],
                                   help="prove an existing database against a backup, "
                                        "read-only")
    checking.add_argument("--target-url", help="postgresql:// URL of the database to check, "
                                               "without a password (env BACKSTOP_TARGET_URL)")
    checking.add_argument("--table", action="append", default=[], metavar="NAME",
                          help="only these tables and what belongs to them")
    checking.set_defaults(run=cmd_check)
    report_cli.add_commands(commands, common)
    return top


def timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time such as "
                                         "2026-01-31T14:30:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def source_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--db-url", help="postgresql:// URL without a password (env "
                                          "BACKSTOP_DATABASE_URL, which may hold one)")
    command.add_argument("--db-secret", help="Secrets Manager secret id with RDS-style JSON")


def source(args: argparse.Namespace) -> Connection:
    if args.db_secret:
        return Connection.from_secret(args.db_secret)
    return database_from(args.db_url, "BACKSTOP_DATABASE_URL", "--db-url")


def database_from(url: str | None, env: str, flag: str) -> Connection:
    if url:
        connection = Connection.from_url(url)
        if connection.password is not None:
            raise ConfigError(f"{flag} holds a password, which other users can read in the "
                              f"process list; put the URL in {env} or the password in "
                              "PGPASSWORD or ~/.pgpass")
        return dataclasses.replace(connection, password=os.environ.get("PGPASSWORD"))
    if from_env := os.environ.get(env):
        return Connection.from_url(from_env)
    raise ConfigError(f"no database given; use {flag} or {env}")


def read_keys(files: Sequence[str] | None, env: str, what: str) -> list[str]:
    paths = list(files or [p for p in os.environ.get(env, "").split(os.pathsep) if p])
    if not paths:
        raise ConfigError(f"no {what} given; pass --{what.replace(' ', '-')} FILE or set {env}")
    keys = []
    for path in paths:
        try:
            keys.append(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    return keys


def named(check: str) -> tuple[str, str]:
    name, _, query = check.partition("=")
    if not name.strip() or not query.strip():
        raise ConfigError(f"--check {check!r} must look like NAME=SQL")
    return name.strip(), query


def split(values: Sequence[str]) -> tuple[str, ...]:
    """Repeated and comma-separated names; a comma inside double quotes is part of a name."""
    return tuple(item for value in values for item in names.split_list(value))


def cmd_backup(args: argparse.Namespace) -> int:
    connection = source(args)
    request = BackupRequest(
        database=args.database or connection.dbname, retention=args.retention,
        reason=args.reason,
        scope=Scope(args.scope, split(args.table), split(args.exclude_table),
                    split(args.schema), split(args.exclude_schema), args.profile),
        checks=dict(named(check) for check in args.check))
    keys = read_keys(args.recipient_key, "BACKSTOP_RECIPIENT_KEYS", "recipient key")
    meter = Meter(enabled=not (args.quiet or args.json) and sys.stderr.isatty())
    manifest = run_backup(request, connection=connection, store=open_store(args.store),
                          recipient_keys=keys, progress=meter,
                          fingerprint_limit=args.fingerprint_limit_mb * 2**20)
    meter.finish()
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
    elif not args.quiet:
        print(f"backup {manifest.id} DONE: {human_size(manifest.size)} in "
              f"{manifest.duration_seconds:.1f} s -> {args.store}/{manifest.key}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    manifest = restore.choose(store, args.backup, database=args.database, before=args.before)
    target = database_from(args.target_url, "BACKSTOP_TARGET_URL", "--target-url")
    request = restore.RestoreRequest(mode=args.mode, tables=split(args.table),
                                     confirm=args.confirm)
    window = restore.data_loss_window(manifest, args.incident_at) if args.incident_at else None
    recipients = (read_keys(args.recipient_key, "BACKSTOP_RECIPIENT_KEYS", "recipient key")
                  if args.confirm else [])
    outcome = restore.restore(store, manifest, target=target, request=request,
                              private_key=private_key(args), recipient_keys=recipients)
    result: dict[str, Any] = {"backup": manifest.id, "target": target.describe(),
                              "pre_restore_backup": outcome.pre_restore_backup,
                              "report": outcome.report.to_dict()}
    if window is not None:
        result["data_loss_window_seconds"] = window.total_seconds()
    show_report(result, args.json)
    return 0 if outcome.report.ok else VerificationError.exit_code


def cmd_verify(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    manifest = restore.choose(store, args.backup, database=args.database, before=args.before)
    scratch = args.scratch_url or os.environ.get("BACKSTOP_SCRATCH_URL")
    server = (database_from(args.scratch_url, "BACKSTOP_SCRATCH_URL", "--scratch-url")
              if scratch else source(args))
    report = restore.verify_backup(store, manifest, server=server,
                                   private_key=private_key(args))
    show_report({"backup": manifest.id, "report": report.to_dict()}, args.json)
    return 0 if report.ok else VerificationError.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    manifest = restore.choose(store, args.backup, database=args.database, before=args.before)
    target = database_from(args.target_url, "BACKSTOP_TARGET_URL", "--target-url")
    report = restore.check(manifest, target=target, tables=split(args.table))
    show_report({"backup": manifest.id, "report": report.to_dict()}, args.json)
    return 0 if report.ok else VerificationError.exit_code


def private_key(args: argparse.Namespace) -> str:
    (key,) = read_keys([args.private_key] if args.private_key else None,
                       "BACKSTOP_PRIVATE_KEY", "private key")
    return key


def show_report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    report = result["report"]
    verdict = "VERIFIED" if report["ok"] else "VERIFICATION FAILED"
    print(f"backup {result['backup']} -> {report['target']} ({report['mode']}): {verdict}")
    print_table(["  Table", "Rows in manifest", "Rows restored", "Result"],
                [[f"  {t['table']}", t["expected_rows"], t["restored_rows"], t["result"]]
                 for t in report["tables"]])
    print(f"  tables matched   {report['tables_matched']} of {report['tables_checked']}")
    for line in report["problems"]:
        print(f"  PROBLEM          {line}")
    for line in report["compared"]:
        print(f"  {'compared':16} {line}")
    for skip in report["skipped"]:
        print(f"  {'skipped':16} {skip['entry']}: {skip['reason']}")
    for line in report["notes"]:
        print(f"  {'note':16} {line}")
    print(f"  restore time     {report['restore_seconds']:.1f} s "
          f"({report['throughput_mb_s']:.1f} MB/s), checks {report['verify_seconds']:.1f} s")
    if result.get("pre_restore_backup"):
        print(f"  pre-restore      backup {result['pre_restore_backup']} of the old state")
    if "data_loss_window_seconds" in result:
        hours = result["data_loss_window_seconds"] / 3600
        print(f"  data-loss window {hours:.1f} h between the backup's snapshot and the incident")


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    manifests = catalog.list_manifests(store, database=args.database)
    if args.csv:
        report_cli.print_csv([log_entry(m, store) | {"id": m.id} for m in manifests])
        return 0
    if args.json:
        print(json.dumps([log_entry(m, store) for m in manifests], indent=2))
        return 0
    rows = [list(log_entry(m, store).values()) for m in manifests]
    print_table(["Date", "Time", "Database", "Type", "Status", "File", "Size", "Reason",
                 "Verified", "Stored", "Retention"], rows)
    return 0


def log_entry(m: Manifest, store: ObjectStore) -> dict[str, Any]:
    """One line of the runbook's backup log template."""
    verified = m.verification
    return {
        "date": f"{m.started_at:%Y-%m-%d}", "time": f"{m.started_at:%H:%M} UTC",
        "database": m.database, "type": m.retention, "status": m.status,
        "file": m.key.rsplit("/", 1)[-1], "size": human_size(m.size) if m.size else "-",
        "reason": m.reason,
        "verified": "-" if verified is None else ("yes" if verified.get("ok") else "FAILED"),
        "stored": store.location, "retention": RETENTION_POLICY[m.retention],
    }


def cmd_show(args: argparse.Namespace) -> int:
    manifest = catalog.find(open_store(args.store), args.backup_id)
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
        return 0
    data = manifest.to_dict()
    tables = data.pop("tables")
    for key in ("schema", "relations", "sequences", "matviews", "roles"):
        recorded = data.pop(key)
        objects = recorded.get("objects", {}) if key == "schema" else recorded
        print(f"{key:24} {len(objects)} recorded")
    for key, value in data.items():
        print(f"{key:24} {json.dumps(value) if isinstance(value, dict | list) else value}")
    print()
    print_table(["Table", "Rows", "Fingerprint", "Size"],
                [[f"{t['schema']}.{t['name']}", t["rows"], t["fingerprint"] or "(skipped: size)",
                  human_size(t["bytes"])] for t in tables])
    return 0


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
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


if __name__ == "__main__":
    sys.exit(main())
