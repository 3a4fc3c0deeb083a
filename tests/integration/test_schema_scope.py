"""Backups of some schemas (--schema, --exclude-schema) of a plain source restore and verify
on their own: pg_dump gets the kept schemas by name and the extensions whose objects live in
them, so the archive never creates anything in a schema it does not hold."""

from __future__ import annotations

import pytest

from backstop import prove
from backstop.backup import BackupRequest, run_backup
from backstop.manifest import Scope
from backstop.store import LocalStore

SOURCE = """
CREATE SCHEMA audit;
CREATE EXTENSION citext SCHEMA audit;
CREATE TABLE audit.log (id serial PRIMARY KEY, who audit.citext NOT NULL);
INSERT INTO audit.log (who) VALUES ('Ann'), ('BOB');
CREATE FUNCTION public.ddl_seen() RETURNS event_trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE NOTICE 'ddl'; END$$;
CREATE EVENT TRIGGER ddl_seen ON ddl_command_end EXECUTE FUNCTION public.ddl_seen();
CREATE PUBLICATION quotes_out FOR TABLE public.quotes;
"""


@pytest.fixture
def source(pg):
    db = pg.database()
    pg.sql(db, SOURCE)
    yield db
    pg.sql(db, "DROP EVENT TRIGGER ddl_seen")  # event triggers fire in every later session


def backup_and_verify(pg, source, tmp_path, gpg_keys, scope):
    store = LocalStore(tmp_path / "store")
    made = run_backup(BackupRequest("scoped", scope=scope), connection=source, store=store,
                      recipient_keys=[gpg_keys.public])
    report = prove.verify_backup(store, made, server=pg.connection("postgres"),
                                 private_key=gpg_keys.private)
    return made, report


def test_excluding_the_schema_an_extension_lives_in_leaves_the_extension_out(
        pg, source, tmp_path, gpg_keys):
    made, report = backup_and_verify(pg, source, tmp_path, gpg_keys,
                                     Scope(exclude_schemas=("audit",)))

    # With `exclude schema audit` alone, the archive would still create citext in schema
    # audit, which it does not hold, and the restore would fail on it.
    assert report.ok, (report.problems, report.mismatches, report.skipped)
    assert "citext" not in made.extensions and "vector" in made.extensions
    assert {t.schema for t in made.tables} == {"public"}
    # the event trigger and the publication belong to the whole database, not to a schema
    assert [s["entry"] for s in report.skipped] == ["SCHEMA - public"]


def test_a_backup_of_public_alone_verifies(pg, source, tmp_path, gpg_keys):
    made, report = backup_and_verify(pg, source, tmp_path, gpg_keys,
                                     Scope(schemas=("public",)))

    assert report.ok, (report.problems, report.mismatches, report.skipped)
    assert made.extensions["vector"]["tables"] == ["public.document_embeddings"]
    # pg_dump writes CREATE SCHEMA public for a named `public`; every database has it
    assert report.skipped == [{"entry": "SCHEMA - public",
                               "reason": report.skipped[0]["reason"]}]
    assert "has it already" in report.skipped[0]["reason"]
