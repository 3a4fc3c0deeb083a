"""A corpus of hostile databases, written for Backstop's tests, and the loader that builds them.

Each database is a few SQL files run by psql (so `ALTER TYPE ... ADD VALUE` and explicit
transactions behave as they do for a person), small enough to load in seconds. Roles are
cluster-wide, so every load gets roles under a unique prefix; `Roles.drop` removes them (and
what they were granted in every database) afterwards.

For each database the matrix needs a few table names, written in the command line's `--table`
syntax: a table outside `public`, two tables for a scoped data-only backup, and the tables a
`--mode tables` restore selects.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from backstop.connection import Connection
from backstop.tools import pg_tool

HERE = Path(__file__).parent
_prefixes = itertools.count()


@dataclasses.dataclass(frozen=True)
class Database:
    name: str
    files: tuple[str, ...]
    outside_public: str  # --table of a table outside public
    data_pair: tuple[str, str]  # --scope data-only --table a,b
    selection: tuple[str, ...]  # --mode tables --table ...
    about: str

    @property
    def drift(self) -> Path:
        """SQL that moves a copy of the database away from it, every constraint still valid:
        the state of a target that a restore replaces."""
        return HERE / "drift" / f"{self.name}.sql"


CORPUS = {db.name: db for db in (
    Database("names", ("names.sql",), 'other."we.ird"', ("public.quotes", "other.quotes"),
             ("public.quotes", 'other."we.ird"', 'public."other.quotes"', 'public."a,b"'),
             "one table name in two schemas; dots, quotes, commas, spaces, capitals, unicode"),
    Database("partitions", ("partitions.sql",), "part.events",
             ("part.events_2024", "public.cars"), ("part.events", "public.vehicles"),
             "range, list, sub- and default partitions; INHERITS with rows at every level"),
    Database("types", ("types.sql", "values.sql"), "app.everything",
             ("app.tickets", "edge.floats"), ("app.everything", "edge.times"),
             "identity, generated, serial; sequences; enums, domains, composites, ranges; "
             "citext, hstore, vector in schema extensions; fragile values"),
    Database("objects", ("objects.sql",), "sales.customers",
             ("public.quotes", "public.line_items"), ("public.quotes",),
             "foreign keys, checks, exclusion, triggers with an audit table, RLS with FORCE, "
             "grants to source-only roles, comments, views, matviews, large objects"),
    Database("settings", ("values.sql", "settings.sql"), "edge.times",
             ("edge.floats", "edge.texts"), ("edge.numbers", "edge.documents"),
             "database- and role-level settings that change how values print"),
    Database("rental", ("rental.sql",), "public.payment_p2024_02",
             ("public.actor", "public.film_actor"), ("public.payment", "public.film"),
             "a film-rental schema: domains, enum, full text, triggers, FK cycle, "
             "partitioned payments, views, a matview"),
)}


@dataclasses.dataclass(frozen=True)
class Roles:
    """Roles that exist only on the source's server, under a prefix unique to one load."""

    prefix: str

    @classmethod
    def unique(cls) -> Roles:
        return cls(f"corpus{os.getpid()}x{next(_prefixes)}_")

    @property
    def names(self) -> dict[str, str]:
        return {"reader": f"{self.prefix}reader", "writer": f"{self.prefix}writer",
                "odd_role": f"{self.prefix}Odd Role"}

    def create(self, connection: Connection) -> None:
        with connection.connect(autocommit=True) as conn:
            for role in self.names.values():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))

    def drop(self, connection: Connection) -> None:
        """Drop the roles and whatever they were granted or own, in every database."""
        roles = sql.SQL(", ").join(sql.Identifier(r) for r in self.names.values())
        with connection.connect(autocommit=True) as conn:
            names = [r for (r,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn").fetchall()]
        for name in names:
            try:
                with connection.with_dbname(name).connect(autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(roles))
            except psycopg.errors.UndefinedObject:
                return  # already gone
        with connection.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(roles))


def load(target: Connection, database: Database, roles: Roles) -> None:
    """Build `database` in the (empty) database `target` names."""
    variables = {"db": target.dbname, **roles.names}
    for name in database.files:
        run_psql(target, HERE / name, variables)


def run_psql(target: Connection, script: Path, variables: dict[str, str]) -> None:
    args = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script),
            f"--dbname={target.conninfo()}"]
    for key, value in variables.items():
        args += ["-v", f"{key}={value}"]
    with target.child_env() as env:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loading {script.name} into {target.dbname} failed: "
                           f"{done.stderr.strip()}")
