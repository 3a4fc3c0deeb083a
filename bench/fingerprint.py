"""`python -m bench.fingerprint VERSION`: fingerprint every table of the database in
BACKSTOP_DATABASE_URL inside one REPEATABLE READ snapshot, as a backup does, with the given
fingerprint version (backstop.fingerprint: 1 hashes each row's text, 2 and 3 its columns'
binary forms), and print them as JSON."""

from __future__ import annotations

import json
import os
import sys

import psycopg

from backstop import snapshot, tables
from backstop.connection import Connection
from backstop.manifest import Scope


def main(version: str) -> int:
    connection = Connection.from_url(os.environ["BACKSTOP_DATABASE_URL"])
    with connection.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot.pin(conn)
        coverage = snapshot.cover(conn, Scope())
        stats = tables.measure(conn, coverage.data, fingerprint_limit=2**62,
                               version=int(version))
    print(json.dumps({t.name: t.fingerprint for t in stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
