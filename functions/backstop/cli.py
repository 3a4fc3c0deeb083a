"""`backstop`: the command line over the library. Each command parses, calls one library
function and prints; errors become one line on stderr and a distinct exit code."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from backstop import (
    catalog,
    crypto,
    health,
    leftovers,
    names,
    processes,
    profiles,
    prove,
    report_cli,
    restore,
)
from backstop.backup import FINGERPRINT_LIMIT, BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import (
    BackstopError,
    ConfigError,
    NotFoundError,
    VerificationError,
    escape,
    scrub,
)
from backstop.manifest import RETENTION_CLASSES, SCOPE_MODES, Manifest, Scope
from backstop.output import Meter, human_size, print_table, show_report
from backstop.restore import RESTORE_MODES
from backstop.signing import Policy
from backstop.store import LocalStore, ObjectStore, open_store

MAX_REASON = 200

RETENTION_POLICY = {"daily": "7 days", "weekly": "30 days", "monthly": "12 months",
                    "pre-migration": "permanent", "pre-restore": "permanent",
                    "manual": "as configured"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever happens, stderr gets one scrubbed line and children die."""
    _log_to_stderr()
    restore_signals = processes.handle_signals()
    try:
        args = parser().parse_args(argv)
        processes.sweep_temp_dirs()  # what a killed run left: keyrings, passfiles, dumps
        result: int = args.run(args)
        return result
    except BackstopError as exc:
        return _fail(str(exc), exc.exit_code)
    except processes.Terminated:
        return _fail("stopped by SIGTERM; nothing was recorded as done", 143)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was recorded as done", 130)
    except Exception as exc:  # a bug, or an input nobody foresaw: still one line, no secret
        return _fail(f"unexpected {type(exc).__name__}: {exc}; nothing was recorded as done "
                     "(please report this)", 1)
    finally:
        processes.stop_all()
        restore_signals()


def _fail(message: str, code: int) -> int:
    print(f"backstop: error: {scrub(message)}", file=sys.stderr)
    return code


class _Warnings(logging.Handler):
    """Backstop's own warnings, one scrubbed line each; libraries' chatter (a rollback
    warning, python-gnupg, Python warnings) stays out of the one-line contract."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("backstop") and record.levelno >= logging.WARNING:
            try:
                text = record.getMessage()
            except Exception:
                text = str(record.msg)
            print(f"backstop: warning: {scrub(text)}", file=sys.stderr)


def _log_to_stderr() -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _Warnings) for h in root.handlers):
        root.addHandler(_Warnings())
        logging.captureWarnings(True)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"backstop: error: {scrub(message)}; see {self.prog} --help\n")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="backstop", description="PostgreSQL backups that prove they restore.")
    commands = top.add_subparsers(required=True, metavar="command")

    common = Parser(add_help=False)
    common.add_argument("--store", default=os.environ.get("BACKSTOP_STORE", "backups"),
                        help="local directory or s3://bucket/prefix (env BACKSTOP_STORE; "
                             "default ./backups)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--trust-unsigned", action="store_true",
                        help="accept manifests without a signature (a store written before "
                             "signing, or without a key); altered signed ones stay refused")

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
    backup.add_argument("--reason", default="manual backup", type=reason,
                        help=f"why (at most {MAX_REASON} characters)")
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

    chooser = Parser(add_help=False, parents=[common])
    chooser.add_argument("backup", help="a backup id, or 'latest' (with --database)")
    chooser.add_argument("--database", help="which database's backups 'latest' means")
    chooser.add_argument("--before", type=timestamp, metavar="TIME",
                         help="the newest backup taken before this ISO time")
    chooser.add_argument("--private-key", metavar="FILE",
                         help="armored OpenPGP private key (env BACKSTOP_PRIVATE_KEY)")
    chooser.add_argument("--passphrase-file", metavar="FILE",
                         help="the private key's passphrase, if it has one (env "
                              f"{crypto.PASSPHRASE_ENV} holds it otherwise; never an "
                              "argument)")
    chooser.add_argument("--check", action="append", default=[], metavar="NAME=SQL",
                         help="health query to compare with the value the backup recorded "
                              "(repeat; only these run, never a manifest's)")

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
        except ValueError:
            raise ConfigError(f"{what} {path} is not text; give an armored key "
                              "(gpg --armor --export...)") from None
    return keys


def checks(values: Sequence[str]) -> dict[str, str]:
    """`--check NAME=SQL` options, each validated as one read-only query (health.py)."""
    parsed: dict[str, str] = {}
    for value in values:
        name, _, query = value.partition("=")
        if not name.strip() or not query.strip():
            raise ConfigError(f"--check {value!r} must look like NAME=SQL")
        parsed[name.strip()] = query
    return health.validate_all(parsed)


def reason(text: str) -> str:
    if len(text) > MAX_REASON:
        raise argparse.ArgumentTypeError(f"--reason is {len(text)} characters; keep it to "
                                         f"{MAX_REASON}")
    return text


def store_of(args: argparse.Namespace, *, reading: bool = True,
             sweep: bool = False) -> ObjectStore:
    """The store, with its signing policy; a local one that does not exist is an error for
    a command that reads it (not an empty backup log), and the start-up sweep runs first for
    a command that may have been killed before."""
    store = open_store(args.store, signing=Policy.from_env(trust_unsigned=args.trust_unsigned))
    if reading and isinstance(store, LocalStore) and not store.root.is_dir():
        raise NotFoundError(f"store directory {store.root} does not exist; check --store "
                            "(or BACKSTOP_STORE)")
    if sweep:
        leftovers.sweep_local(store)
    return store


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
        checks=checks(args.check))
    keys = read_keys(args.recipient_key, "BACKSTOP_RECIPIENT_KEYS", "recipient key")
    meter = Meter(enabled=not (args.quiet or args.json) and sys.stderr.isatty())
    store = store_of(args, reading=False, sweep=True)
    manifest = run_backup(request, connection=connection, store=store,
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
    store = store_of(args, sweep=True)
    manifest = catalog.choose(store, args.backup, database=args.database, before=args.before)
    target = database_from(args.target_url, "BACKSTOP_TARGET_URL", "--target-url")
    request = restore.RestoreRequest(mode=args.mode, tables=split(args.table),
                                     confirm=args.confirm, checks=checks(args.check))
    window = catalog.data_loss_window(manifest, args.incident_at) if args.incident_at else None
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
    store = store_of(args, sweep=True)
    manifest = catalog.choose(store, args.backup, database=args.database, before=args.before)
    scratch = args.scratch_url or os.environ.get("BACKSTOP_SCRATCH_URL")
    server = (database_from(args.scratch_url, "BACKSTOP_SCRATCH_URL", "--scratch-url")
              if scratch else source(args))
    report = prove.verify_backup(store, manifest, server=server,
                                 private_key=private_key(args), checks=checks(args.check))
    show_report({"backup": manifest.id, "report": report.to_dict()}, args.json)
    return 0 if report.ok else VerificationError.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    store = store_of(args)
    manifest = catalog.choose(store, args.backup, database=args.database, before=args.before)
    target = database_from(args.target_url, "BACKSTOP_TARGET_URL", "--target-url")
    report = prove.check(manifest, target=target, tables=split(args.table),
                         checks=checks(args.check))
    show_report({"backup": manifest.id, "report": report.to_dict()}, args.json)
    return 0 if report.ok else VerificationError.exit_code


def private_key(args: argparse.Namespace) -> str:
    """The private key's text; its passphrase file, if given, is read by crypto when it
    decrypts (the path travels in this process's environment, never to a child)."""
    if args.passphrase_file:
        os.environ[crypto.PASSPHRASE_FILE_ENV] = args.passphrase_file
    (key,) = read_keys([args.private_key] if args.private_key else None,
                       "BACKSTOP_PRIVATE_KEY", "private key")
    return key


def cmd_list(args: argparse.Namespace) -> int:
    store = store_of(args)
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
    manifest = catalog.find(store_of(args), args.backup_id)
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
        shown = json.dumps(value) if isinstance(value, dict | list) else escape(str(value))
        print(f"{key:24} {shown}")
    print()
    print_table(["Table", "Rows", "Fingerprint", "Size"],
                [[f"{t['schema']}.{t['name']}", t["rows"], t["fingerprint"] or "(skipped: size)",
                  human_size(t["bytes"])] for t in tables])
    return 0


if __name__ == "__main__":
    sys.exit(main())
