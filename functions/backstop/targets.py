"""Making a target able to hold a backup, before pg_restore runs: it must offer every
extension a restored table uses; the extensions the backup uses and their schemas are created
where its archive does not create them; the roles a restore created get the memberships the
backup recorded between them, and go to the restoring role where the archive sets their
default privileges (only a member of a role may). What the target still cannot hold, the
restore rules leave out (rules.py).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg
from psycopg import sql

from backstop import rules
from backstop.errors import SourceError
from backstop.manifest import Manifest
from backstop.selection import Archive


def check_extensions(conn: psycopg.Connection[Any], manifest: Manifest,
                     restored: Collection[str], target: str) -> None:
    """Refuse a target that lacks an extension a restored table (`schema.name`) uses. A
    manifest that does not say which tables use an extension needs them all."""
    available = _names(conn, "SELECT name FROM pg_catalog.pg_available_extensions")
    for name, item in sorted(manifest.extensions.items()):
        users = item.get("tables")
        using = sorted(set(restored) if users is None else set(restored) & set(users))
        if name not in available and using:
            raise SourceError(
                f"target {target} lacks extension {name}, which "
                f"{'table' if len(using) == 1 else 'tables'} {', '.join(using[:5])} of backup "
                f"{manifest.id} use{'s' if len(using) == 1 else ''}: install it on the "
                "target's server (pgvector: the 'vector' extension), or restore other tables "
                "(--mode tables)")


def grant_memberships(conn: psycopg.Connection[Any], manifest: Manifest,
                      created: Collection[str]) -> list[str]:
    """Between the roles a restore created, the memberships the backup recorded (a
    Supabase `authenticator` may act as `anon`, as PostgREST needs). Returns notes."""
    recorded = {r["name"]: r.get("member_of", []) for r in manifest.roles}
    granted = [(parent, role) for role in created for parent in recorded.get(role, [])
               if parent in created]
    for parent, role in granted:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent),
                                                      sql.Identifier(role)))
    return ["granted the memberships the backup has between those roles: "
            + ", ".join(f"{role} in {parent}" for parent, role in granted)] if granted else []


def prepare(conn: psycopg.Connection[Any], manifest: Manifest, archive: Archive,
            created: Collection[str], *, definitions: bool, occupied: bool
            ) -> tuple[rules.Skips, list[str]]:
    """Before pg_restore: the extensions and schemas (when the restore brings
    `definitions`), the grants of `created` roles; then the rules' verdicts on the archive,
    from the target as it now is (`occupied`: holding tables). Returns them and notes for
    the report."""
    notes = _create_extensions(conn, manifest, archive) if definitions else []
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
                       ).fetchone()
    if not (row and row[0]):
        setting = {e.owner or "" for e in archive.entries if e.desc == "DEFAULT ACL"}
        for role in sorted(setting & set(created)):
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
    facts = rules.read_facts(conn, archive, manifest.extensions, occupied=occupied)
    return rules.Skips(archive, facts), notes


def _create_extensions(conn: psycopg.Connection[Any], manifest: Manifest,
                       archive: Archive) -> list[str]:
    """Each recorded extension in the schema the backup had it in: the schema where the
    archive does not create it (Supabase's `extensions`, left out of its backups), and the
    extension itself where the archive lacks it."""
    available = _names(conn, "SELECT name FROM pg_catalog.pg_available_extensions")
    schemas = _names(conn, "SELECT nspname FROM pg_catalog.pg_namespace") | {
        e.tag for e in archive.entries if e.desc == "SCHEMA"}
    made = _names(conn, "SELECT extname FROM pg_catalog.pg_extension") | {
        e.tag for e in archive.entries if e.desc == "EXTENSION"}
    created: list[str] = []
    for name, item in sorted(manifest.extensions.items()):
        schema = item.get("schema")
        if name not in available or not schema:
            continue
        if schema not in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema)))
            schemas.add(schema)
            created.append(f"schema {schema}")
        if name not in made:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}").format(
                sql.Identifier(name), sql.Identifier(schema)))
            created.append(f"extension {name} in it" if created[-1:] == [f"schema {schema}"]
                           else f"extension {name} in schema {schema}")
    return [f"created {', '.join(created)}, where the backup's extensions live (its archive "
            "does not create them)"] if created else []


def _names(conn: psycopg.Connection[Any], query: str) -> set[str]:
    return {n for (n,) in conn.execute(query).fetchall()}
