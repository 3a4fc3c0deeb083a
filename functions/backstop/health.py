"""Health checks: the operator's queries, never a manifest's.

A check is one value-returning query from the operator's configuration (`--check NAME=SQL`,
`databases[].checks` in the cloud). A backup records each check's query and value; a restore
runs the operator's checks again and compares. A manifest read back supplies values, never
SQL. Each query is parsed (pglast, PostgreSQL's own parser) and must be one plain SELECT: no
data-modifying WITH, no SELECT INTO, no row locks, none of the functions below that reach
outside the database or change settings. It then runs in a read-only transaction that is
rolled back, as the role ROLE, which can read data and do nothing else. Where the connecting
role may not set ROLE up (a managed server's owner without the right to grant
pg_read_all_data, such as Supabase's postgres), the checks run as the connecting role, still
parsed and still read-only, with a warning that gives the statements an administrator runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from backstop.connection import Connection
from backstop.errors import ConfigError, escape

ROLE = "backstop_health"
MAX_QUERY = 4000
# Functions that act outside the query: files, other servers, other sessions, settings,
# locks, sleeping, or running SQL from a string.
_DENIED_PREFIXES = ("pg_read", "pg_ls", "pg_stat_file", "pg_file", "lo_", "dblink",
                    "pg_terminate", "pg_cancel", "pg_reload", "pg_rotate", "pg_sleep",
                    "pg_advisory", "pg_try_advisory", "pg_notify", "pg_logical", "pg_replication",
                    "pg_create", "pg_drop", "pg_switch", "pg_promote", "pg_backup", "pg_import",
                    "pg_log", "query_to_xml", "cursor_to_xml", "set_config",
                    "txid_", "nextval", "setval", "pg_current_xact")
_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
log = logging.getLogger(__name__)
ROLE_HOW = (f"CREATE ROLE {ROLE} NOLOGIN BYPASSRLS; GRANT pg_read_all_data TO {ROLE}; "
            f"GRANT {ROLE} TO <the backup role>")


def validate(name: str, query: str) -> str:
    """`query` if it is one read-only SELECT, else a ConfigError that says why."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    what = f"health check {escape(name)!r}"
    if len(query) > MAX_QUERY:
        raise ConfigError(f"{what} is longer than {MAX_QUERY} characters")
    try:
        statements = parse_sql(query)
    except ParseError as exc:
        raise ConfigError(f"{what} is not valid SQL ({escape(str(exc))})") from None
    if len(statements) != 1:
        raise ConfigError(f"{what} must be exactly one statement, not {len(statements)}")
    statement = statements[0].stmt
    if not isinstance(statement, ast.SelectStmt):
        raise ConfigError(f"{what} must be a SELECT returning one value, not "
                          f"{type(statement).__name__.removesuffix('Stmt').upper()}")
    for node in _walk(statement):
        kind = type(node).__name__
        if kind in _WRITES:
            raise ConfigError(f"{what} modifies data; a health check may only read")
        if isinstance(node, ast.SelectStmt) and (node.intoClause or node.lockingClause):
            raise ConfigError(f"{what} uses SELECT INTO or FOR UPDATE/SHARE; a health check "
                              "may only read")
        if isinstance(node, ast.FuncCall):
            function = str(getattr((node.funcname or ("",))[-1], "sval", "")).lower()
            if function.startswith(_DENIED_PREFIXES):
                raise ConfigError(f"{what} calls {function}(), which acts outside the query; "
                                  "a health check may only read data")
    return query


def validate_all(checks: Mapping[str, str]) -> dict[str, str]:
    return {name: validate(name, query) for name, query in checks.items()}


def _walk(node: Any) -> Iterator[Any]:
    from pglast import ast

    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


def prepare_role(connection: Connection) -> None:
    """Make sure ROLE exists and the connecting role may become it (autocommit, before the
    backup's or the check's transaction). A role without the right to create it gets the
    statements to run once, and the checks run as the connecting role (`run`)."""
    try:
        with connection.connect(autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone()
            if not exists:
                # it must see every row the connecting role sees: row security aside
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS").format(
                    sql.Identifier(ROLE)))
                if conn.info.server_version >= 140000:
                    conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(
                        sql.Identifier(ROLE)))
            member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')",
                                  [ROLE]).fetchone()
            if not (member and member[0]):
                conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(ROLE)))
    except psycopg.Error as exc:
        log.warning("health checks run read-only as %s, not as role %s, which %s could not "
                    "set up (%s); as an administrator run: %s", connection.user, ROLE,
                    connection.describe(), connection.scrub(" ".join(str(exc).split())),
                    ROLE_HOW)


def _usable(conn: psycopg.Connection[Any]) -> bool:
    """ROLE exists, the session may become it, and it reads every row the session would
    (a check as a role under row security would count fewer rows)."""
    row = conn.execute(
        "SELECT pg_has_role(current_user, r.oid, 'MEMBER') AND (current_setting("
        "'server_version_num')::int < 140000 OR pg_has_role(r.oid, 'pg_read_all_data', "
        "'MEMBER')) AND (r.rolbypassrls OR NOT (SELECT u.rolsuper OR u.rolbypassrls "
        "FROM pg_roles u WHERE u.rolname = current_user)) "
        "FROM pg_roles r WHERE r.rolname = %s", [ROLE]).fetchone()
    return bool(row and row[0])


def run(conn: psycopg.Connection[Any], checks: Mapping[str, str]) -> dict[str, Any]:
    """Run each (validated) check as ROLE, read-only, in a savepoint rolled back afterwards
    (inside a backup's snapshot transaction the snapshot is kept). Records each query and
    its single value as text."""
    health: dict[str, Any] = {}
    if not checks:
        return health
    as_role = _usable(conn)
    for name, query in validate_all(checks).items():
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET LOCAL transaction_read_only = on")
                if as_role:
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ROLE)))
                row = conn.execute(query.encode()).fetchone()
        except psycopg.OperationalError:
            raise  # the connection failed, not the check: the caller names the database
        except psycopg.Error as exc:
            raise ConfigError(f"health check {escape(name)!r} failed: "
                              f"{escape(' '.join(str(exc).split()))}; fix its SQL") from None
        health[name] = {"query": query, "value": None if row is None else _text(row[0])}
    return health


def problems(conn: psycopg.Connection[Any], recorded: Mapping[str, Any],
             checks: Mapping[str, str], backup_id: str) -> list[str]:
    """The operator's checks, run again and compared with what the backup recorded."""
    found = []
    runnable = {}
    for name, query in checks.items():
        if name not in recorded:
            found.append(f"health check {name}: backup {backup_id} did not record it")
        elif recorded[name].get("query") != query:
            found.append(f"health check {name}: its query differs from the one backup "
                         f"{backup_id} recorded; compare like with like")
        else:
            runnable[name] = query
    now = run(conn, runnable)
    found += [f"health check {name}: {now[name]['value']!r}, expected "
              f"{recorded[name]['value']!r}" for name in runnable
              if now[name]["value"] != recorded[name]["value"]]
    return found


def _text(value: Any) -> str | None:
    """A server-independent text form: timestamps in UTC, whatever the session time zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    return None if value is None else str(value)

