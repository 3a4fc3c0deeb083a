"""Backups against a real PostgreSQL, real pg_dump and real gpg; S3 through moto."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psutil

from backstop import catalog
from backstop.backup import BackupRequest, run_backup
from backstop.manifest import DONE, Manifest, Scope
from backstop.store import LocalStore, ObjectStore, ObjectWriter, open_store
from tests.conftest import KeyPair, Postgres
from tests.integration.stock import snapshot_of, stock_restore

SAMPLE_TABLES = {"public.companies", "public.document_embeddings", "public.line_items",
                 "public.pricing_items", "public.quotes"}


def backup(db: Any, store: ObjectStore, keys: KeyPair, scope: Scope | None = None,
           **kwargs: Any) -> Manifest:
    return run_backup(BackupRequest("quotepro", scope=scope or Scope()), connection=db, store=store,
                      recipient_keys=[keys.public], **kwargs)


def restored(pg: Postgres, store: ObjectStore, manifest: Manifest, keys: KeyPair,
             *extra: str, target: Any = None) -> dict[str, Any]:
    target = target or pg.database(empty=True)
    stock_restore(store.get(manifest.key), keys.home, target, *extra)
    return snapshot_of(target)


def assert_matches(manifest: Manifest, got: dict[str, Any]) -> None:
    for expected in manifest.tables:
        actual = got[f"{expected.schema}.{expected.name}"]
        assert actual.rows == expected.rows
        assert actual.fingerprint == expected.fingerprint


class Hooked:
    """A store whose writers call `hook` before their first write: the moment the dump is
    known to be streaming."""

    def __init__(self, inner: ObjectStore, hook: Any) -> None:
        self.inner, self.hook, self.location = inner, hook, inner.location

    def writer(self, key: str) -> ObjectWriter:
        inner, hook = self.inner.writer(key), self.hook

        class Writer:
            fired = False

            def write(self, data: bytes) -> None:
                if not Writer.fired:
                    Writer.fired = True
                    hook()
                inner.write(data)

            commit, abort = inner.commit, inner.abort

        return Writer()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def pg_dump_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "pg_dump"]


def test_round_trip_through_stock_tools_equals_the_manifest(pg, db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    manifest = backup(db, store, gpg_keys)

    assert manifest.status == DONE
    assert {f"{t.schema}.{t.name}" for t in manifest.tables} == SAMPLE_TABLES
    assert all(t.rows > 0 and t.fingerprint for t in manifest.tables)
    assert_matches(manifest, restored(pg, store, manifest, gpg_keys))


def test_manifest_records_what_a_restore_needs(db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    manifest = backup(db, store, gpg_keys)
    ciphertext = store.get(manifest.key)
    on_disk = json.loads(store.get(manifest.manifest_key))

    assert manifest.size == len(ciphertext)
    assert manifest.sha256 == hashlib.sha256(ciphertext).hexdigest()
    assert on_disk.pop("signature")["algorithm"] == "HMAC-SHA256"
    assert on_disk == manifest.to_dict()
    assert catalog.load(store, manifest.manifest_key) == manifest
    assert on_disk["encryption"]["recipients"] == [gpg_keys.fingerprint]
    assert on_disk["source"]["server_version"].startswith("18")
    assert on_disk["dump"]["format"] == "custom"
    assert on_disk["snapshot"]["id"]
    assert manifest.key.startswith(f"manual/quotepro/{manifest.started_at:%Y/%m/%d}/")
    assert ciphertext[:1] != b"P" and b"PGDMP" not in ciphertext[:4096]  # not plaintext


def test_rows_written_during_the_dump_do_not_break_equality(pg, db, gpg_keys, tmp_path):
    def insert_more() -> None:
        pg.sql(db, "INSERT INTO companies (name, domain, plan, created_at) "
                   "SELECT 'late ' || i, 'late.example', 'free', now() "
                   "FROM generate_series(1, 25) i")

    store = LocalStore(tmp_path)
    manifest = backup(db, Hooked(store, insert_more), gpg_keys)

    live = pg.sql(db, "SELECT count(*) FROM companies")[0][0]
    in_manifest = next(t.rows for t in manifest.tables if t.name == "companies")
    assert live == in_manifest + 25
    assert_matches(manifest, restored(pg, store, manifest, gpg_keys))


def test_fingerprints_are_skipped_above_the_size_limit_and_say_so(db, gpg_keys, tmp_path):
    manifest = backup(db, LocalStore(tmp_path), gpg_keys, fingerprint_limit=200_000)
    by_name = {t.name: t for t in manifest.tables}

    assert by_name["companies"].fingerprint is not None
    assert by_name["document_embeddings"].fingerprint is None
    assert by_name["document_embeddings"].rows > 0
    assert manifest.fingerprint_limit_bytes == 200_000


def test_schema_only_restores_empty_tables(pg, db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    manifest = backup(db, store, gpg_keys, Scope("schema-only"))
    got = restored(pg, store, manifest, gpg_keys)

    assert set(got) == SAMPLE_TABLES
    assert all(t.rows == 0 for t in got.values())


def test_data_only_restores_rows_into_an_existing_schema(pg, db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    schema = backup(db, store, gpg_keys, Scope("schema-only"))
    data = backup(db, store, gpg_keys, Scope("data-only"))
    target = pg.database(empty=True)
    restored(pg, store, schema, gpg_keys, target=target)

    # every backup holds its definitions too: the stock data-only restore asks for the rows
    got = restored(pg, store, data, gpg_keys, "--data-only", "--disable-triggers",
                   target=target)
    assert_matches(data, got)


def test_selected_tables_only(pg, db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    scope = Scope("full", tables=("companies", "public.pricing_items"))
    manifest = backup(db, store, gpg_keys, scope)
    got = restored(pg, store, manifest, gpg_keys)

    assert {t.name for t in manifest.tables} == {"companies", "pricing_items"}
    assert set(got) == SAMPLE_TABLES  # every definition, so it restores on its own
    assert {name for name, t in got.items() if t.rows} == {"public.companies",
                                                           "public.pricing_items"}
    assert_matches(manifest, got)


def test_one_large_table_on_its_own(pg, db, gpg_keys, tmp_path):
    """The runbook's separate embeddings backup is just a scope."""
    store = LocalStore(tmp_path)
    manifest = backup(db, store, gpg_keys, Scope("full", tables=("document_embeddings",)))
    target = pg.database()
    pg.sql(target, "TRUNCATE document_embeddings")
    got = restored(pg, store, manifest, gpg_keys, "--data-only", target=target)

    assert [t.name for t in manifest.tables] == ["document_embeddings"]
    assert_matches(manifest, got)


def test_excluded_tables_are_left_out(pg, db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    manifest = backup(db, store, gpg_keys, Scope("full", exclude_tables=("document_embeddings",)))
    got = restored(pg, store, manifest, gpg_keys)

    assert "public.document_embeddings" not in got
    assert set(got) == SAMPLE_TABLES - {"public.document_embeddings"}


def test_several_recipients_can_each_decrypt(pg, db, gpg_keys, other_keys, tmp_path):
    store = LocalStore(tmp_path)
    manifest = run_backup(BackupRequest("quotepro"), connection=db, store=store,
                          recipient_keys=[gpg_keys.public, other_keys.public])

    assert set(manifest.encryption["recipients"]) == {gpg_keys.fingerprint,
                                                      other_keys.fingerprint}
    assert_matches(manifest, restored(pg, store, manifest, other_keys))


def test_s3_round_trip_with_checksums(pg, db, gpg_keys, s3):
    store = open_store("s3://backups/prod", s3_client=s3)
    manifest = backup(db, store, gpg_keys)

    head = s3.head_object(Bucket="backups", Key=f"prod/{manifest.key}", ChecksumMode="ENABLED")
    assert head["ContentLength"] == manifest.size
    assert "ChecksumSHA256" in head
    body = s3.get_object(Bucket="backups", Key=f"prod/{manifest.key}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == manifest.sha256
    assert json.loads(s3.get_object(Bucket="backups", Key=f"prod/{manifest.manifest_key}")
                      ["Body"].read())["status"] == DONE
    assert_matches(manifest, restored(pg, store, manifest, gpg_keys))


def test_s3_multipart_with_several_parts(db, gpg_keys, s3, monkeypatch):
    monkeypatch.setattr("backstop.s3store.PART_SIZE", 1024 * 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024)
    store = open_store("s3://backups", s3_client=s3)
    manifest = backup(db, store, gpg_keys)

    head = s3.head_object(Bucket="backups", Key=manifest.key)
    body = s3.get_object(Bucket="backups", Key=manifest.key)["Body"].read()
    assert int(head["ETag"].strip('"').rsplit("-", 1)[1]) >= 3  # a multipart ETag counts parts
    assert manifest.size > 3 * 1024 * 1024
    assert hashlib.sha256(body).hexdigest() == manifest.sha256
