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
from pathlib import Path
from typing import Any

from backstop import catalog
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import BackstopError, ConfigError
from backstop.manifest import RETENTION_CLASSES, SCOPE_MODES, Manifest, Scope
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
                        help="only these tables (repeat, or comma-separated)")
    backup.add_argument("--exclude-table", action="append", default=[], metavar="NAME")
    backup.add_argument("--retention", choices=RETENTION_CLASSES, default="manual")
    backup.add_argument("--reason", default="manual backup")
    backup.add_argument("--recipient-key", action="append", metavar="FILE",
                        help="armored OpenPGP public key file (repeat for several "
                             "recipients; env BACKSTOP_RECIPIENT_KEYS, ':'-separated)")
    backup.add_argument("--quiet", action="store_true", help="no progress output")
    backup.set_defaults(run=cmd_backup)

    listing = commands.add_parser("list", parents=[common], help="the backup log")
    listing.add_argument("--database")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", parents=[common], help="one backup's manifest")
    show.add_argument("backup_id")
    show.set_defaults(run=cmd_show)
    return top


def source_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--db-url", help="postgresql:// URL without a password (env "
                                          "BACKSTOP_DATABASE_URL, which may hold one)")
    command.add_argument("--db-secret", help="Secrets Manager secret id with RDS-style JSON")


def source(args: argparse.Namespace) -> Connection:
    if args.db_secret:
        return Connection.from_secret(args.db_secret)
    if args.db_url:
        connection = Connection.from_url(args.db_url)
        if connection.password is not None:
            raise ConfigError("--db-url holds a password, which other users can read in the "
                              "process list; put the URL in BACKSTOP_DATABASE_URL or the "
                              "password in PGPASSWORD or ~/.pgpass")
        return dataclasses.replace(connection, password=os.environ.get("PGPASSWORD"))
    if url := os.environ.get("BACKSTOP_DATABASE_URL"):
        return Connection.from_url(url)
    raise ConfigError("no database given; use --db-url, --db-secret or BACKSTOP_DATABASE_URL")


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


def split(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def cmd_backup(args: argparse.Namespace) -> int:
    connection = source(args)
    request = BackupRequest(
        database=args.database or connection.dbname, retention=args.retention,
        reason=args.reason,
        scope=Scope(args.scope, split(args.table), split(args.exclude_table)))
    keys = read_keys(args.recipient_key, "BACKSTOP_RECIPIENT_KEYS", "recipient key")
    meter = Meter(enabled=not (args.quiet or args.json) and sys.stderr.isatty())
    manifest = run_backup(request, connection=connection, store=open_store(args.store),
                          recipient_keys=keys, progress=meter)
    meter.finish()
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
    elif not args.quiet:
        print(f"backup {manifest.id} DONE: {human_size(manifest.size)} in "
              f"{manifest.duration_seconds:.1f} s -> {args.store}/{manifest.key}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    manifests = catalog.list_manifests(store, database=args.database)
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
