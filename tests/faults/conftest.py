"""A source large enough that each phase (dump, upload, decrypt, restore) lasts long enough
to be caught and hurt: the QuotePro sample plus a bulk table, built once as a template."""

from __future__ import annotations

import itertools
import os

import pytest

from backstop.connection import Connection

BIG_TEMPLATE = "faults_template"
_names = itertools.count()


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
    name = f"f{os.getpid()}_{next(_names)}"
    with pg.server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{big_template}" OWNER backstop')
    return pg.connection(name)
