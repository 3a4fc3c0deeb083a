"""The bench's PostgreSQL: the embedded wheel's server on a pgdata that outlives the run.

Loading a 1 GB sample takes minutes, so the bench keeps its cluster in `.bench/pgdata` and
reuses a database generated for the same size.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from backstop import sample
from backstop.connection import Connection
from backstop.localdb import LocalServer

CALIBRATION_SCALE = 8


class BenchServer(LocalServer):
    """LocalServer's connections and databases, on a persistent cluster."""

    def __init__(self, pgdata: Path) -> None:
        super().__init__(pgdata, keep=True)

    def exists(self, dbname: str) -> bool:
        with self.admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                [dbname]).fetchone() is not None

    def postmaster_pid(self) -> int:
        """The server's root process (its first line of postmaster.pid)."""
        return int((Path(self.server.pgdata) / "postmaster.pid").read_text().split()[0])

    def size(self, dbname: str) -> int:
        with self.admin() as conn:
            row = conn.execute("SELECT pg_database_size(%s)", [dbname]).fetchone()
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def sample_database(self, target_bytes: int) -> tuple[Connection, int]:
        """The QuotePro sample at about `target_bytes` on disk (generated once, then reused);
        returns its connection and its exact size."""
        name = f"quotepro_{round(target_bytes / 1e6)}mb"
        if not self.exists(name):
            self._generate(name, target_bytes)
        return self.connection(name), self.size(name)

    def _generate(self, name: str, target_bytes: int) -> None:
        scale = self._scale_for(target_bytes)
        print(f"bench: generating {name} (sample scale {scale}); reused by later runs",
              flush=True)
        loading = f"{name}_loading"
        self._load(loading, scale)
        with self.admin() as conn:  # the final name exists only once the load is complete
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(loading), sql.Identifier(name)))

    def _scale_for(self, target_bytes: int) -> int:
        """Sample scale for a size, from the measured size of a small load (the sample grows
        linearly with its scale)."""
        self._load("quotepro_empty", 0)
        empty = self.size("quotepro_empty")
        self._load("quotepro_calibration", CALIBRATION_SCALE)
        per_scale = (self.size("quotepro_calibration") - empty) / CALIBRATION_SCALE
        self.drop("quotepro_empty")
        self.drop("quotepro_calibration")
        return max(1, round((target_bytes - empty) / per_scale))

    def _load(self, dbname: str, scale: int) -> None:
        connection = self.create_database(dbname)
        sample.load(connection, scale)
        with connection.connect(autocommit=True) as conn:
            # A settled database, as in production: the first dump must not pay for hint
            # bits and visibility maps that the load left unset.
            conn.execute("VACUUM (FREEZE, ANALYZE)")
            conn.execute("CHECKPOINT")
