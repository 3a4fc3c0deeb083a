"""`python -m bench.fingerprint text|library`: fingerprint every user table of the database in
BACKSTOP_DATABASE_URL inside one REPEATABLE READ snapshot, as a backup does, and print JSON.

`library` is Backstop's own fingerprint as it stands; `text` is the first form (a 64-bit hash
of each row's text, summed), kept here as the reference the newer forms are measured against.
"""

from __future__ import annotations

import json
import os
import sys

import psycopg
from psycopg import sql

from backstop import tables
from backstop.connection import Connection


def main(form: str) -> int:
    connection = Connection.from_url(os.environ["BACKSTOP_DATABASE_URL"])
    with connection.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        available = tables.user_tables(conn)
        if form == "library":
            stats = tables.measure(conn, available, fingerprint_limit=2**62)
            found = {t.name: t.fingerprint for t in stats}
        else:
            found = {}
            for table in available:
                row = conn.execute(sql.SQL(
                    "SELECT coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} AS t"
                ).format(table.identifier())).fetchone()
                assert row is not None
                found[table.name] = row[0]
    print(json.dumps({"form": form, "tables": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
