"""What a backup covers, and what it records about it inside the dump's snapshot: per-table
counts and fingerprints, the schema signature, large objects, materialized views' state, the
roles the objects name and the extensions with their schemas.

The same functions observe a restored (or any) database, so the two sides are computed by
one piece of code and compared value for value. Callers run them inside a transaction:
`pin()` makes the printed forms independent of the session, server and role settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from backstop import archive, profiles, rules, signature
from backstop import tables as tbl
from backstop.errors import ConfigError, NotFoundError
from backstop.manifest import Scope

LARGE_OBJECTS = """
SELECT count(*), coalesce(sum(pg_catalog.hash_array_extended(ARRAY[
         pg_catalog.int8send(m.oid::pg_catalog.int8), pg_catalog.lo_get(m.oid)], 0)), 0)::text
FROM pg_catalog.pg_largeobject_metadata m
"""
EXTENSIONS = """
SELECT e.extname, e.extversion, n.nspname FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'
ORDER BY 1
"""
MATVIEWS = """
SELECT n.nspname, c.relname, c.relispopulated FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname = ANY(%s) ORDER BY 1, 2
"""
# Roles named by the objects in scope: grantees of their privileges (not their owners: a
# restore runs --no-owner), roles of policies, and the roles whose default privileges the
# archive sets (a restore must create them to set those); with the roles each is a member of.
ROLES = """
WITH named(oid) AS (
  SELECT a.grantee FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
    pg_catalog.aclexplode(c.relacl) a
    WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> c.relowner
  UNION SELECT a.grantee FROM pg_catalog.pg_attribute t
    JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
    pg_catalog.aclexplode(t.attacl) a
    WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> c.relowner
  UNION SELECT a.grantee FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
    WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> n.nspowner
  UNION SELECT a.grantee FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace,
    pg_catalog.aclexplode(p.proacl) a
    WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> p.proowner
  UNION SELECT a.grantee FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace,
    pg_catalog.aclexplode(t.typacl) a
    WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> t.typowner
  UNION SELECT unnest(p.polroles) FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(schemas)s)
  UNION SELECT a.grantee FROM pg_catalog.pg_largeobject_metadata m,
    pg_catalog.aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner
  UNION SELECT d.defaclrole FROM pg_catalog.pg_default_acl d
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
    WHERE d.defaclnamespace = 0 OR n.nspname = ANY(%(schemas)s)
  UNION SELECT a.grantee FROM pg_catalog.pg_default_acl d
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
    pg_catalog.aclexplode(d.defaclacl) a
    WHERE d.defaclnamespace = 0 OR n.nspname = ANY(%(schemas)s)
)
SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
       r.rolreplication, r.rolbypassrls,
       ARRAY(SELECT g.rolname FROM pg_catalog.pg_auth_members a
             JOIN pg_catalog.pg_roles g ON g.oid = a.roleid WHERE a.member = r.oid ORDER BY 1)
FROM pg_catalog.pg_roles r WHERE r.oid IN (SELECT oid FROM named) ORDER BY 1
"""
ROLE_FIELDS = ("name", "login", "superuser", "inherit", "createrole", "createdb",
               "replication", "bypassrls", "member_of")


def pin(conn: psycopg.Connection[Any]) -> None:
    """For the rest of the current transaction, print every name schema-qualified."""
    conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What one backup covers in one database."""

    schemas: list[str]
    relations: list[tbl.Relation]  # every table, partitioned table and matview in scope
    data: list[tbl.Relation]  # physical tables whose rows the archive holds
    excluded: list[tbl.Table]  # left out entirely (definition and rows)
    whole: bool  # every row in scope, large objects and materialized views included
    named: bool  # some schema is left out: pg_dump is given the kept ones by name
    extensions: list[str]  # the extensions the archive creates
    members: dict[str, list[str]]  # every extension's member objects (profiles.py)

    @property
    def catalog(self) -> tbl.Catalog:
        return tbl.Catalog.of(self.relations)

    def without_data(self) -> list[tbl.Table]:
        """Tables whose definitions the archive holds but not their rows, in a backup of some
        tables' rows; and then materialized views too, whose refresh needs rows it lacks."""
        if self.whole or not self.data:  # every row, or none (schema-only)
            return []
        holding = {r.table for r in self.data}
        return [r.table for r in self.relations if r.kind in ("r", "m") and r.table not in
                holding]


def cover(conn: psycopg.Connection[Any], scope: Scope) -> Coverage:
    """Resolve a backup's scope against the database: which schemas, which tables' rows."""
    present = tbl.schemas(conn)
    unknown = [s for s in (*scope.schemas, *scope.exclude_schemas) if s not in present]
    if unknown:
        raise NotFoundError(f"schema {', '.join(map(repr, unknown))} is not in database "
                            f"{conn.info.dbname} (it has {', '.join(present)})")
    profile = profiles.get(scope.profile)
    for schema in scope.schemas:
        if (choice := profile.exclusion(schema)) is not None:
            raise ConfigError(f"profile {profile.name} leaves out schema {schema} "
                              f"({choice.reason}); back it up with --profile plain")
    in_schemas = [s for s in present if (not scope.schemas or s in scope.schemas)
                  and s not in scope.exclude_schemas and not profile.excluded(s)]
    if not in_schemas:
        raise ConfigError(f"the scope leaves no schema of database {conn.info.dbname} to back "
                          "up; check --schema and --exclude-schema")
    named = in_schemas != present
    members = {n: sorted(m) for n, m in conn.execute(profiles.EXTENSION_MEMBERS).fetchall()}
    extensions = (profiles.travelling_extensions(profile, in_schemas, members) if named
                  else sorted(members))
    found = tbl.relations(conn, in_schemas)
    catalog = tbl.Catalog.of(found)
    where = f"database {conn.info.dbname}"
    excluded = catalog.resolve(scope.exclude_tables, where=where)
    found = [r for r in found if r.table not in excluded]
    physical = [r for r in found if r.kind == "r"]
    if scope.mode == "schema-only":
        data: list[tbl.Relation] = []
    elif scope.tables:
        chosen = set(catalog.resolve(scope.tables, where=where))
        data = [r for r in physical if r.table in chosen]
    else:
        data = physical
    whole = scope.mode != "schema-only" and not scope.tables
    return Coverage(in_schemas, found, data, excluded, whole=whole, named=named,
                    extensions=extensions, members=members)


def record(conn: psycopg.Connection[Any], coverage: Coverage,
           fingerprint_limit: int) -> dict[str, Any]:
    """The manifest's record of the database in the current snapshot."""
    pin(conn)
    role = conn.execute("SELECT current_user").fetchone()
    assert role is not None
    return {
        "tables": tuple(tbl.measure(conn, coverage.data, fingerprint_limit)),
        "relations": {r.table.qualified: {"kind": r.kind, "partition_of": r.partition_of
                                          and r.partition_of.qualified}
                      for r in coverage.relations},
        "matviews": matviews(conn, coverage.schemas, restorable=coverage.whole),
        "large_objects": large_objects(conn) if coverage.whole else None,
        "schema": {"version": signature.VERSION, "major": conn.info.server_version // 10000,
                   "schemas": coverage.schemas, "role": role[0],
                   "objects": signature.collect(conn, coverage.schemas, not_of=[role[0]])},
        "roles": roles(conn, coverage.schemas),
        "extensions": extensions(conn, coverage),
    }


def matviews(conn: psycopg.Connection[Any], in_schemas: Sequence[str], *,
             restorable: bool) -> dict[str, Any]:
    """Whether each materialized view comes back populated: when it is, and the archive
    holds every row (a refresh over some tables' rows would be a different view)."""
    return {tbl.Table(s, n).qualified: {"populated": populated and restorable}
            for s, n, populated in conn.execute(MATVIEWS, [list(in_schemas)]).fetchall()}


def large_objects(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(LARGE_OBJECTS).fetchone()
    assert row is not None
    return {"count": int(row[0]), "hash": row[1]}


def roles(conn: psycopg.Connection[Any], in_schemas: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(ROLE_FIELDS, row, strict=True))
            for row in conn.execute(ROLES, {"schemas": list(in_schemas)}).fetchall()]


def extensions(conn: psycopg.Connection[Any], coverage: Coverage) -> dict[str, dict[str, Any]]:
    """The extensions the archive creates and those its tables use (which a target must
    offer), each with its schema, the tables that use it and its member objects (which the
    backup trims to those the archive names: `archived_members`)."""
    in_scope = {r.table for r in coverage.relations}
    users: dict[str, list[str]] = {}
    for name, schema, table in conn.execute(profiles.EXTENSION_TABLES,
                                            [coverage.schemas]).fetchall():
        if tbl.Table(schema, table) in in_scope:
            users.setdefault(name, []).append(tbl.Table(schema, table).qualified)
    wanted = set(coverage.extensions) | set(users)
    return {name: {"version": version, "schema": schema, "tables": users.get(name, []),
                   "members": coverage.members.get(name, [])}
            for name, version, schema in conn.execute(EXTENSIONS).fetchall() if name in wanted}


def archived_members(extensions: dict[str, dict[str, Any]], entries: Iterable[archive.Entry]
                     ) -> dict[str, dict[str, Any]]:
    """`extensions` with each one's members trimmed to those the archive names."""
    named = rules.archived_members({n: e["members"] for n, e in extensions.items()}, entries)
    return {n: {**{k: v for k, v in e.items() if k != "members"},
                **({"members": named[n]} if n in named else {})}
            for n, e in extensions.items()}
