"""The SQL around a restore that replaces rows in a database that is in use: Backstop's part of
the one transaction psql runs (see pgrestore.scripted).

Before the rows load: foreign keys that touch the tables are set aside (their definitions
read from the target), the tables' user triggers are disabled (an audit trigger must not
write a second copy of what the backup already holds), forced row security is lifted for the
owner, and the tables are emptied with TRUNCATE ONLY (an inheritance parent never empties its
children). After: the triggers and row security are as they were, the foreign keys are back,
added NOT VALID and then validated where their rows hold; one that does not hold stays NOT
VALID, and verification names it and counts its broken rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backstop.archive import Entry
from backstop.snapshot import pin
from backstop.tables import Table

TOUCHING_FOREIGN_KEYS = """
SELECT cn.nspname, cl.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid),
       c.convalidated
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_catalog.pg_class pl ON pl.oid = c.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
  AND ((cn.nspname, cl.relname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
    OR (pn.nspname, pl.relname) IN (SELECT * FROM unnest(%(schemas)s::text[],
                                                         %(names)s::text[])))
"""
STATE = """
SELECT n.nspname, c.relname, c.relforcerowsecurity,
       ARRAY(SELECT t.tgname FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled = 'O'),
       ARRAY(SELECT t.tgname FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled = 'R'),
       ARRAY(SELECT t.tgname FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled = 'A')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
"""
DOLLAR = "$backstop$"  # a dollar quote no pg_dump definition contains


def foreign_key(statement: str, *, validated: bool = True) -> sql.Composable:
    """Add a foreign key (`ALTER TABLE ... ADD CONSTRAINT ...;`) unless it exists, validated
    where its rows hold, else NOT VALID (in a subtransaction, so a violation never ends the
    restore)."""
    statement = statement.strip().removesuffix(";").removesuffix(" NOT VALID")
    if not validated:
        return sql.SQL("{} NOT VALID;\n").format(sql.SQL(statement))
    return sql.SQL("DO {d} BEGIN {s}; EXCEPTION WHEN duplicate_object THEN NULL; "
                   "WHEN foreign_key_violation THEN {s} NOT VALID; END {d};\n").format(
                       d=sql.SQL(DOLLAR), s=sql.SQL(statement))


@dataclasses.dataclass(frozen=True)
class Reload:
    """Preamble and postamble for replacing the rows of `tables` in a live database."""

    preamble: str
    postamble: str


def plan(conn: psycopg.Connection[Any], tables: Sequence[Table], *, emptied: Sequence[Table],
         guarded: Iterable[Entry] = (), links: Iterable[Entry] = ()) -> Reload:
    """`tables` exist in the target; the rows of `emptied` (physical tables among them) are
    removed first. `guarded` archive entries (the tables' own indexes, constraints, ...) run
    afterwards where they do not exist yet; `links` (foreign keys from the archive) are added
    like the set-aside ones."""
    key = {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]}
    with conn.transaction():
        pin(conn)  # definitions name tables schema-qualified, as the script's empty path needs
        keys = conn.execute(TOUCHING_FOREIGN_KEYS, key).fetchall()
        state = conn.execute(STATE, key).fetchall()
    before: list[sql.Composable] = [
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {};\n").format(Table(s, t).identifier(),
                                                              sql.Identifier(name))
        for s, t, name, _, _ in keys]
    restore: list[sql.Composable] = []
    for schema, name, forced, origin, replica, always in state:
        table = Table(schema, name).identifier()
        before.append(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER;\n").format(table))
        for how, triggers in (("", origin), ("REPLICA ", replica), ("ALWAYS ", always)):
            restore += [sql.SQL("ALTER TABLE {} ENABLE {}TRIGGER {};\n").format(
                table, sql.SQL(how), sql.Identifier(t)) for t in triggers]
        if forced:
            before.append(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY;\n").format(table))
            restore.append(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY;\n").format(table))
    if emptied:
        before.append(sql.SQL("TRUNCATE ONLY {};\n").format(
            sql.SQL(", ").join(t.identifier() for t in emptied)))
    after_parts: list[sql.Composable] = [foreign_key(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            Table(s, t).identifier(), sql.Identifier(name), sql.SQL(definition)
        ).as_string(conn), validated=valid) for s, t, name, definition, valid in keys]
    after_parts += [foreign_key(e.defn or "") for e in links]
    after_parts += [guard(e) for e in guarded]
    after_parts += restore
    return Reload(_text(conn, before), _text(conn, after_parts))


GUARDED = {"INDEX", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY",
           "ROW SECURITY", "RULE", "COMMENT", "ACL", "STATISTICS", "INDEX ATTACH"}


def guard(entry: Entry) -> sql.Composable:
    """Run an archive entry's statements unless what they create exists already (a
    table kept in place keeps its own; the comparison afterwards names any that differ)."""
    body = (entry.defn or "").strip()
    if DOLLAR in body or not body:
        return sql.SQL("")
    return sql.SQL("DO {} BEGIN {} EXCEPTION WHEN duplicate_object OR duplicate_table OR "
                   "invalid_table_definition THEN NULL; END {};\n").format(
                       sql.SQL(DOLLAR), sql.SQL(body), sql.SQL(DOLLAR))


def _text(conn: psycopg.Connection[Any], parts: Sequence[sql.Composable]) -> str:
    return "".join(p.as_string(conn) for p in parts)
