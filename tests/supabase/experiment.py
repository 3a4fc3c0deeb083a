"""Stock-tool steps the Supabase experiments share: dump as the project's `postgres` role,
read the archive's entries, prepare an RDS-like target as its master, restore with stock
pg_restore, and compare a restored copy with its source independently of Backstop's own
fingerprints."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Any

from psycopg import sql

from backstop import archive, profiles, rules, selection
from backstop.archive import Entry
from backstop.connection import Connection
from backstop.tools import pg_tool
from tests.supabase.layout import Source, Target

# Every role but the predefined ones, which every server has.
BUILT_IN = "rolname NOT LIKE 'pg\\_%'"


def dump(source: Connection, path: Path, *args: str) -> Path:
    with source.child_env() as env:
        subprocess.run([pg_tool("pg_dump"), "--format=custom", "--no-password", *args,
                        f"--file={path}", f"--dbname={source.conninfo()}"], env=env,
                       check=True, capture_output=True)
    return path


def supabase_dump_args(source: Connection) -> list[str]:
    """pg_dump options for the `supabase` profile: the kept schemas and travelling extensions
    by name, and the profile's own options."""
    profile = profiles.SUPABASE
    with source.connect() as conn:
        schemas = [s for (s,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'").fetchall()]
        members = dict(conn.execute(profiles.EXTENSION_MEMBERS).fetchall())
    kept = profiles.kept_schemas(profile, schemas)
    return ([f"--schema={s}" for s in kept]
            + [f"--extension={e}"
               for e in profiles.travelling_extensions(profile, kept, members)]
            + [choice.name for choice in profile.dump_options])


def entries(path: Path) -> list[Entry]:
    """The archive's entries, read by Backstop's own reader, as `pg_restore -L` takes them."""
    return selection.Archive(archive.parse(path.read_bytes())).entries



def source_roles(source: Source) -> list[str]:
    with source.cluster.admin() as conn:
        return [r for (r,) in conn.execute(
            f"SELECT rolname FROM pg_roles WHERE {BUILT_IN} ORDER BY 1").fetchall()]


def prepare(target: Target, name: str, source: Source, *, foreign_role: str,
            foreign_extension: str, extensions_schema: bool) -> Connection:
    """An empty database on the RDS-like server with the source's roles, created NOLOGIN by
    the master and granted to it, except `foreign_role`, which the server already had (as an
    RDS master named `postgres` would be). `foreign_extension` is pre-installed by the
    server's superuser. With `extensions_schema`, schema `extensions` is created for the
    extensions an archive without it puts there."""
    db = target.database(name)
    with target.cluster.admin() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                            [foreign_role]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(foreign_role)))
    with target.cluster.admin(name) as conn:
        conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(foreign_extension)))
    with db.connect(autocommit=True) as conn:
        existing = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
        for role in source_roles(source):
            if role not in existing:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        if extensions_schema:
            conn.execute("CREATE SCHEMA extensions")
    return db


def facts(target: Connection, path: Path, source: Source) -> rules.Facts:
    """What the restore rules need, read from the target as a restore reads it, with every
    extension member from the source's catalog."""
    with source.postgres.connect() as conn:
        members = {name: {"members": objects} for name, objects in conn.execute(
            profiles.EXTENSION_MEMBERS).fetchall()}
    with target.connect(autocommit=True) as conn:
        return rules.read_facts(conn, selection.Archive(archive.parse(path.read_bytes())),
                                members)


@dataclasses.dataclass(frozen=True)
class Outcome:
    failed: set[int]  # ids of entries that failed
    errors: list[str]  # every error line, attributed or not
    exit_code: int


def restore(path: Path, target: Connection, keep: list[Entry] | None = None) -> Outcome:
    """Stock pg_restore --no-owner into `target`, through a list of `keep` when given, going
    on after errors so that every failing entry shows."""
    args = [pg_tool("pg_restore"), "--no-owner", "--verbose", f"--dbname={target.conninfo()}"]
    with target.child_env() as env:
        if keep is not None:
            listing = path.with_suffix(".list")
            listing.write_text("".join(entry.list_line() + "\n" for entry in keep))
            args.append(f"--use-list={listing}")
        done = subprocess.run([*args, str(path)], env=env, capture_output=True, text=True,
                              check=False)
    return Outcome({int(n) for n in re.findall(r"from TOC entry (\d+);", done.stderr)},
                   re.findall(r"ERROR: +(.*)", done.stderr), done.returncode)


def script_restore(path: Path, target: Connection, keep: list[Entry]) -> None:
    """The documented stock path: pg_restore to SQL through a list, minus the one setting
    older servers lack, into psql in one transaction that stops at the first error."""
    listing = path.with_suffix(".keep")
    listing.write_text("".join(entry.list_line() + "\n" for entry in keep))
    script = subprocess.run([pg_tool("pg_restore"), "--no-owner", f"--use-list={listing}",
                             "--file=-", str(path)], check=True, capture_output=True,
                            text=True).stdout
    script = "\n".join(line for line in script.splitlines()
                       if not line.startswith("SET transaction_timeout"))
    with target.child_env() as env:
        subprocess.run([pg_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                        "--single-transaction", f"--dbname={target.conninfo()}"],
                       input=script, env=env, check=True, capture_output=True, text=True)


def tables(db: Connection, schemas: set[str]) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its sorted rows, under pinned settings: a
    comparison that owes nothing to Backstop's own fingerprint."""
    with db.connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        conn.execute("SET extra_float_digits = 3")
        found = {}
        for schema, name in conn.execute(
                "SELECT relnamespace::regnamespace::text, relname FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace::regnamespace::text = ANY(%s)",
                [list(schemas)]).fetchall():
            row = conn.execute(sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                "FROM ONLY {} t").format(sql.Identifier(schema, name))).fetchone()
            assert row is not None
            found[f"{schema}.{name}"] = (int(row[0]), str(row[1]))
        return found


def policies(db: Connection, schemas: set[str]) -> set[tuple[Any, ...]]:
    with db.connect() as conn:
        return {tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in conn.execute(
            "SELECT schemaname, tablename, policyname, permissive, roles::text[], cmd, qual, "
            "with_check FROM pg_policies WHERE schemaname = ANY(%s)", [list(schemas)]
        ).fetchall()}


def rls_enabled(db: Connection, schemas: set[str]) -> set[tuple[str, str]]:
    with db.connect() as conn:
        return {(s, t) for s, t in conn.execute(
            "SELECT relnamespace::regnamespace::text, relname FROM pg_class "
            "WHERE relrowsecurity AND relnamespace::regnamespace::text = ANY(%s)",
            [list(schemas)]).fetchall()}
