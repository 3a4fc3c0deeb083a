"""Integration fixtures.

The hostile corpus on the session's server: each database loaded once, copied per test.

`corpora.source(name)` is the loaded database itself (with its database- and role-level
settings); tests never change it. `targets` makes throwaway databases (empty, or copies of a
source, optionally drifted away from it) and drops them when the test ends.

The monthly report's year of generated backups in local stores: January to November written
once per session, December per store with its faults (``year.py``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from backstop.connection import Connection
from backstop.manifest import Manifest
from backstop.store import open_store
from tests.conftest import KeyPair, Postgres
from tests.corpus import CORPUS, HERE, Roles, load, run_psql
from tests.integration import year

_names = itertools.count()


class Corpora:
    def __init__(self, pg: Postgres) -> None:
        self.pg = pg
        self.roles = Roles.unique()
        self.roles.create(pg.connection("postgres"))
        self.loaded: set[str] = set()

    def source(self, name: str) -> Connection:
        dbname = f"corpus_{name}"
        if name not in self.loaded:
            load(self.pg.server.create_database(dbname), CORPUS[name], self.roles)
            self.loaded.add(name)
        return self.pg.connection(dbname)

    def variables(self, target: Connection) -> dict[str, str]:
        return {"db": target.dbname, **self.roles.names}


class Targets:
    """Databases made for one test, dropped after it."""

    def __init__(self, pg: Postgres, corpora: Corpora) -> None:
        self.pg, self.corpora, self.made = pg, corpora, list[str]()

    def _name(self) -> str:
        name = f"target{os.getpid()}_{next(_names)}"
        self.made.append(name)
        return name

    def empty(self) -> Connection:
        name = self._name()
        with self.pg.server.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER backstop").format(
                sql.Identifier(name)))
        return self.pg.connection(name)

    def copy(self, corpus: str, *, drift: bool = False) -> Connection:
        """A copy of a corpus database, with its settings; drifted: changed the way a
        production database changes after its backup (see tests/corpus/drift)."""
        source = self.corpora.source(corpus)
        name = self._name()
        with self.pg.server.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER backstop").format(
                sql.Identifier(name), sql.Identifier(source.dbname)))
        target = self.pg.connection(name)
        variables = self.corpora.variables(target)
        if "settings.sql" in CORPUS[corpus].files:  # database settings are not copied
            run_psql(target, HERE / "settings.sql", variables)
        if drift:
            run_psql(target, HERE / "drift" / "common.sql", variables)
            run_psql(target, CORPUS[corpus].drift, variables)
        return target

    def drop(self) -> None:
        for name in self.made:
            self.pg.server.drop(name)


@pytest.fixture(scope="session")
def corpora(pg: Postgres) -> Iterator[Corpora]:
    made = Corpora(pg)
    yield made
    made.roles.drop(pg.connection("postgres"))


@pytest.fixture
def targets(pg: Postgres, corpora: Corpora) -> Iterator[Targets]:
    made = Targets(pg, corpora)
    yield made
    made.drop()


# --------------------------------------------------------------------------- the report's year
@pytest.fixture(scope="session")
def base(pg: Postgres, gpg_keys: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return year.template(pg, gpg_keys, tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def months_before(base: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January to November, written once; each store below starts as a copy of it."""
    root = tmp_path_factory.mktemp("year") / "store"
    year.generate(open_store(str(root)), base, end=year.MONTH_START)
    return root


@pytest.fixture(scope="session")
def faulty_store(months_before: Path, base: Manifest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year whose December holds every fault of ``year.FAULTS``."""
    return year.december(months_before, base, tmp_path_factory.mktemp("faulty") / "store",
                         year.FAULTS)
