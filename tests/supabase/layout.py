"""Build a Supabase-like source and an RDS-like target on a throwaway cluster.

The Supabase-like database imitates a hosted project's `postgres` database: Supabase's roles
(`postgres` not a superuser), its managed schemas, event triggers owned by `supabase_admin`,
the `supabase_realtime` publication, `vector` in schema `extensions`, and QuotePro on top with
RLS through auth.uid(). Extensions the test servers lack are stand-ins (SQL only, under
extensions/): on PostgreSQL 18 they are real extensions found through
`extension_control_path`; PostgreSQL 17 and 15 have no such setting, so there the managed
ones' scripts run as plain SQL (the schemas and objects exist, the extension does not). What
is emulated:

- pg_graphql, supabase_vault, pgsodium, pg_net: stand-ins (extensions/managed), marked
  `trusted` because Supabase lets `postgres` create them (supautils' privileged extensions);
- pgcrypto, uuid-ossp: stand-ins on 18 (extensions/common); 17 has the real pgcrypto and the
  uuid-ossp stand-in in its installation's copy (servers.py); 15 has the real ones;
- pg_cron: schema `cron` with a `job` table, no extension;
- pgsodium's security label on vault.secrets.secret: written into pg_seclabel directly;
- vector: the real pgvector on 18; 17 and 15 have none, so QuotePro's embeddings are real[]
  there.

The RDS-like target is bootstrapped by `rdsadmin`; its master `backstop` (the cloud scratch
instance's master username) has CREATEDB and CREATEROLE, is not a superuser, and belongs to
`rds_superuser`. What RDS lets rds_superuser do beyond that is granted as narrowly:
- extensions RDS offers (vector, pgcrypto, uuid-ossp) are creatable by a database owner: on 18
  `vector` is declared trusted through a control-file copy, pgcrypto and uuid-ossp are trusted
  already; 17 and 15 offer no vector, as a server without pgvector would not;
- `session_replication_role` may be set (GRANT SET ON PARAMETER), as on RDS.
Extensions RDS does not offer (pg_graphql, supabase_vault, pgsodium, pg_net) are absent.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import psycopg

from backstop import sample
from backstop.connection import Connection
from tests.supabase.servers import Cluster, embedded_bin, extension_dir, trusted_copy

HERE = Path(__file__).parent
SQL = HERE / "sql"
MANAGED = HERE / "extensions" / "managed"
COMMON = HERE / "extensions" / "common"
# In creation order (supabase_vault requires pgsodium), with the schema Supabase puts each in.
EXTENSIONS: tuple[tuple[str, str | None], ...] = (
    ("uuid-ossp", "extensions"), ("pgcrypto", "extensions"), ("vector", "extensions"),
    ("pgsodium", None), ("supabase_vault", None), ("pg_graphql", None), ("pg_net", "extensions"))
RDS_EXTENSIONS = ("vector", "pgcrypto", "uuid-ossp")
SUPABASE_ONLY = ("pgsodium", "supabase_vault", "pg_graphql", "pg_net")
DATABASE = "postgres"  # a Supabase project's database


@dataclasses.dataclass
class Source:
    cluster: Cluster
    postgres: Connection  # the project's `postgres` role, not a superuser
    extensions: dict[str, str]  # created extension -> its schema
    emulated: list[str]  # stand-ins run as plain SQL (no extension)


@dataclasses.dataclass
class Target:
    cluster: Cluster
    master: Connection  # `backstop`: CREATEDB CREATEROLE, no superuser

    def database(self, name: str) -> Connection:
        """An empty database owned by the master, as the master would create it."""
        with self.master.connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.master.with_dbname(name)


def _paths(root: Path, bin_dir: Path, *, managed: bool) -> dict[str, str]:
    """`extension_control_path` for a cluster of the embedded server; none for others."""
    if bin_dir != embedded_bin():
        return {}
    bases = [trusted_copy(root, "rds", ["vector"]),
             extension_dir(root, "common", sorted(COMMON.iterdir()))]
    if managed:
        bases.insert(0, extension_dir(root, "managed", sorted(MANAGED.iterdir())))
    return {"extension_control_path": ":".join([*map(str, bases), "$system"])}


def build_source(root: Path, bin_dir: Path, *, scale: int = 1, new: bool = False) -> Source:
    """The project with QuotePro in it, or (`new`) a new project: what Supabase creates, none
    of the owner's tables or rows."""
    cluster = Cluster(root / "cluster", bin_dir, superuser="supabase_admin",
                      settings=_paths(root, bin_dir, managed=True))
    try:
        with cluster.admin(DATABASE) as conn:
            conn.execute(read("roles.sql"))
            conn.execute(read("schemas.sql"))
            extensions, emulated = _create_extensions(conn)
            conn.execute(read("managed.sql"))
        postgres = cluster.login("postgres", DATABASE)
        if not new:
            sample.load(postgres, scale)
            with postgres.connect(autocommit=True) as conn:
                conn.execute(read("app.sql"))
            with cluster.admin(DATABASE) as conn:
                conn.execute(read("data.sql"))
                conn.execute("ANALYZE")
    except BaseException:
        cluster.stop()
        raise
    return Source(cluster, postgres, extensions, emulated)


def _create_extensions(conn: psycopg.Connection[tuple[object, ...]]
                       ) -> tuple[dict[str, str], list[str]]:
    available = {name for (name,) in conn.execute(
        "SELECT name FROM pg_available_extensions").fetchall()}
    created: dict[str, str] = {}
    emulated: list[str] = []
    for name, schema in EXTENSIONS:
        if name in available:
            conn.execute(f'CREATE EXTENSION "{name}"' + (f" SCHEMA {schema}" if schema else ""))
            row = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                               "WHERE extname = %s", [name]).fetchone()
            assert row is not None
            created[name] = str(row[0])
        elif name in SUPABASE_ONLY:
            _run_plain(conn, name)
            emulated.append(name)
    return created, emulated


def _run_plain(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """A stand-in's script as plain SQL: its schema first, without extension-only calls."""
    control = (MANAGED / f"{name}.control").read_text()
    schema = re.search(r"^schema = (\w+)$", control, re.MULTILINE)
    if schema:
        conn.execute(f"CREATE SCHEMA {schema.group(1)}")
    (script,) = MANAGED.glob(f"{name}--*.sql")
    conn.execute("\n".join(line for line in script.read_text().splitlines()
                           if "pg_extension_config_dump" not in line))


def build_target(root: Path, bin_dir: Path) -> Target:
    cluster = Cluster(root / "cluster", bin_dir, superuser="rdsadmin",
                      settings=_paths(root, bin_dir, managed=False))
    try:
        with cluster.admin() as conn:
            conn.execute("CREATE ROLE rds_superuser NOLOGIN")
            conn.execute("GRANT pg_monitor, pg_signal_backend TO rds_superuser")
            conn.execute("GRANT SET ON PARAMETER session_replication_role TO rds_superuser")
            conn.execute("CREATE ROLE backstop LOGIN CREATEDB CREATEROLE IN ROLE rds_superuser")
        return Target(cluster, cluster.login("backstop", "postgres"))
    except BaseException:
        cluster.stop()
        raise


def read(name: str) -> bytes:
    return (SQL / name).read_bytes()
