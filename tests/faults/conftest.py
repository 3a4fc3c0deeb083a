"""A source large enough that each phase (dump, upload, decrypt, restore) lasts long enough
to be caught and hurt (the QuotePro sample plus a bulk table, built once as a template), and
the command line pointed at it with one good backup already stored."""

from __future__ import annotations

import os

import pytest

from backstop.connection import Connection
from tests.faults.support import Cli

BIG_TEMPLATE = "faults_template"


@pytest.fixture(scope="session")
def big_template(pg) -> str:
    with pg.server.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BIG_TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{BIG_TEMPLATE}" TEMPLATE quotepro_template '
                     "OWNER backstop")
    pg.sql(pg.connection(BIG_TEMPLATE),
           "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS a, md5((-g)::text) AS b "
           "FROM generate_series(1, 1000000) g")
    return BIG_TEMPLATE


@pytest.fixture
def db(pg, big_template) -> Connection:
    return pg.database(template=big_template)


@pytest.fixture
def setup(pg, db, gpg_keys, tmp_path):
    """A database with its password in BACKSTOP_DATABASE_URL, keys in files, a store, and one
    good backup already in it (the 'earlier backup' nothing may touch)."""
    public, private = tmp_path / "public.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    private.chmod(0o600)
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKSTOP_")}
    env.update(BACKSTOP_DATABASE_URL=pg.url(db.dbname), BACKSTOP_RECIPIENT_KEYS=str(public),
               BACKSTOP_PRIVATE_KEY=str(private), BACKSTOP_STORE=str(store),
               BACKSTOP_SIGNING_KEY_FILE=os.environ["BACKSTOP_SIGNING_KEY_FILE"])
    cli = Cli(env, [pg.password])
    first = cli.run("backup", "--database", "quotepro", "--quiet")
    assert first.code == 0, first.err
    return cli, store, db
