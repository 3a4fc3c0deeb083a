"""What a killed Backstop leaves behind, found and removed at the next start.

A `kill -9` runs no cleanup, so each command begins by sweeping Backstop's own leftovers, and
only those: private temporary directories of processes that are gone (with their gpg-agents),
`.partial` files older than a day in a local store, and scratch databases whose creator is gone
or which are older than a day. Each scratch database carries a comment saying who made it and
when; one that someone is connected to is never dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from backstop import processes
from backstop.store import LocalStore, ObjectStore

log = logging.getLogger(__name__)

STALE = timedelta(days=1)
SCRATCH_PREFIX = "backstop_verify_"
_MARK = "backstop scratch "


def sweep_local(store: ObjectStore) -> None:
    """A local store's unfinished writes older than a day (an S3 store's are aborted by the
    bucket's lifecycle rule); temporary directories are swept by processes.sweep_temp_dirs."""
    if isinstance(store, LocalStore):
        for key, age in list(store.partials()):
            if age > STALE.total_seconds():
                with contextlib.suppress(OSError):
                    os.unlink(store.root / key)
                    log.info("removed %s, an unfinished write from %.0f h ago", key, age / 3600)


def create_scratch(conn: psycopg.Connection[Any], name: str) -> None:
    """Create a scratch database, marked with its creator for the sweep."""
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    mark = _MARK + json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                               "created": datetime.now(UTC).isoformat()})
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
        sql.Identifier(name), sql.Literal(mark)))


def sweep_scratch(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the scratch databases a killed verification left (autocommit connection)."""
    rows = conn.execute(
        "SELECT d.datname, shobj_description(d.oid, 'pg_database'), "
        "(SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid) "
        "FROM pg_database d WHERE d.datname LIKE %s", [SCRATCH_PREFIX.replace("_", r"\_") + "%"]
    ).fetchall()
    dropped = []
    for name, comment, connected in rows:
        if connected or not _abandoned(comment):
            continue
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error:  # someone connected in between, or no right to drop it
            continue
        dropped.append(name)
        log.info("dropped scratch database %s, left by a verification that was killed", name)
    return dropped


def _abandoned(comment: str | None) -> bool:
    if not comment or not comment.startswith(_MARK):
        return True  # made before scratch databases were marked, and nobody uses it
    try:
        mark = json.loads(comment[len(_MARK):])
        created = datetime.fromisoformat(mark["created"])
        host, pid = str(mark["host"]), int(mark["pid"])
    except (ValueError, KeyError, TypeError):
        return True
    if datetime.now(UTC) - created > STALE:
        return True
    return host == socket.gethostname() and not processes.alive(pid)
