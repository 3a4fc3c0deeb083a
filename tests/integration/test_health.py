"""Health checks at run time: what the parser lets through still runs read-only, as a role
that can read and nothing else."""

from __future__ import annotations

import pytest

from backstop import health
from backstop.errors import ConfigError


def test_a_check_the_parser_passes_still_cannot_write_or_act_as_the_backup_role(pg, db):
    # a function the parser cannot see into: it writes
    pg.sql(db, "CREATE TABLE planted (n int); CREATE FUNCTION public.sneaky() RETURNS int "
               "LANGUAGE sql VOLATILE AS 'INSERT INTO planted VALUES (1) RETURNING 1'")
    assert health.validate("sneaky", "SELECT public.sneaky()")
    health.prepare_role(db)
    with db.connect() as conn, pytest.raises(ConfigError, match="read-only transaction"):
        health.run(conn, {"sneaky": "SELECT public.sneaky()"})
    with db.connect() as conn:
        ran = health.run(conn, {"who": "SELECT current_user", "rows": "SELECT count(*) FROM "
                                "planted"})
        assert ran["who"]["value"] == health.ROLE and ran["rows"]["value"] == "0"
        assert conn.execute("SELECT current_user").fetchone() != (health.ROLE,)  # reset after
    assert pg.sql(db, "SELECT count(*) FROM planted") == [(0,)]
