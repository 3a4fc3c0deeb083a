"""One Backstop operation in a process of its own, so that its peak RSS is its own:

    python -m bench.one backup --store DIR|s3://BUCKET/PREFIX [--endpoint URL] --recipient-key F
    python -m bench.one verify --store DIR --backup-id ID --private-key F

The database comes from BACKSTOP_DATABASE_URL in the environment (the password never goes
in argv); `verify` restores into a scratch database on the same server. Prints one JSON line:
the operation's wall time (imports excluded), what it produced and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from backstop import restore, sample
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.store import ObjectStore, open_store
from bench.measure import vm_hwm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.one")
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup")
    backup.add_argument("--store", required=True)
    backup.add_argument("--endpoint", help="S3 endpoint URL (the bench's moto server)")
    backup.add_argument("--recipient-key", type=Path, required=True)
    check = commands.add_parser("verify")
    check.add_argument("--store", required=True)
    check.add_argument("--backup-id", required=True)
    check.add_argument("--private-key", type=Path, required=True)
    args = parser.parse_args(argv)

    connection = Connection.from_url(os.environ["BACKSTOP_DATABASE_URL"])
    store = _store(args.store, getattr(args, "endpoint", None))
    started = time.perf_counter()
    if args.command == "backup":
        # the QuotePro health checks, as the demo records them: verification re-runs them
        request = BackupRequest(database=connection.dbname, reason="bench",
                                checks=sample.QUOTEPRO_CHECKS)
        manifest = run_backup(request, connection=connection, store=store,
                              recipient_keys=[args.recipient_key.read_text()])
        _report(started, output_bytes=manifest.size, backup_id=manifest.id)
    else:
        report = restore.verify_backup(
            store, restore.choose(store, args.backup_id),
            server=connection.with_dbname("postgres"), private_key=args.private_key.read_text())
        _report(started, ok=report.ok, problems=[*report.mismatches, *report.problems],
                restore_seconds=report.restore_seconds, verify_seconds=report.verify_seconds)
    return 0


def _store(location: str, endpoint: str | None) -> ObjectStore:
    if endpoint is None:
        return open_store(location)
    from bench.s3 import client

    return open_store(location, s3_client=client(endpoint))


def _report(started: float, **fields: Any) -> None:
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "rss_self": vm_hwm(), **fields}))


if __name__ == "__main__":
    sys.exit(main())
