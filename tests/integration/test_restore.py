"""Restore and verification against a real PostgreSQL and real gpg: every mode, every way a
backup can be bad, and the safety rules for a target that already holds data."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from backstop import catalog, prove, restore, sample, staging
from backstop.backup import BackupRequest, run_backup
from backstop.errors import ConfigError, EncryptionError, IntegrityError, NotFoundError, SourceError
from backstop.manifest import Scope
from backstop.restore import RestoreRequest
from backstop.store import LocalStore
from tests.integration.stock import snapshot_of

ALL = {"public.companies", "public.document_embeddings", "public.line_items",
       "public.pricing_items", "public.quotes"}


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


@pytest.fixture
def made(db, store, gpg_keys):
    """A full backup of a fresh QuotePro copy, with the runbook's health checks."""
    return run_backup(BackupRequest("quotepro", checks=sample.QUOTEPRO_CHECKS), connection=db,
                      store=store, recipient_keys=[gpg_keys.public])


def do_restore(store, manifest, target, keys, **request):
    return restore.restore(store, manifest, target=target, request=RestoreRequest(**request),
                           private_key=keys.private, recipient_keys=[keys.public])


def tables_in(pg, target) -> set[str]:
    return set(snapshot_of(target))


def test_verify_restores_into_a_scratch_database_and_records_the_report(pg, store, made,
                                                                         gpg_keys):
    report = prove.verify_backup(store, made, server=pg.connection("postgres"),
                                 private_key=gpg_keys.private)

    assert report.ok, report
    assert [t["table"] for t in report.tables] == sorted(ALL)
    assert all(t["result"] == "equal" for t in report.tables)
    assert {t["table"]: t["restored_rows"] for t in report.tables} == {
        f"{t.schema}.{t.name}": t.rows for t in made.tables}
    assert report.bytes_restored == made.dump["plain_size"] > 0
    assert report.restore_seconds > 0 and report.throughput_mb_s > 0
    recorded = catalog.choose(store, made.id).verification
    assert recorded is not None and recorded["ok"] and recorded["tables_matched"] == 5
    with pg.server.admin() as conn:  # the scratch database is gone
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname LIKE "
                                "'backstop_verify_%'").fetchall()


def test_recording_keeps_the_manifest_whole(store, made, gpg_keys, pg):
    prove.verify_backup(store, made, server=pg.connection("postgres"),
                        private_key=gpg_keys.private)
    on_disk = json.loads(store.get(made.manifest_key))

    assert {k: v for k, v in on_disk.items() if k not in ("verification", "signature")} == {
        k: v for k, v in made.to_dict().items() if k != "verification"}
    assert [k for k in store.keys() if k.endswith(".partial")] == []


def test_full_restore_into_an_empty_database(pg, store, made, gpg_keys):
    target = pg.database(empty=True)
    outcome = do_restore(store, made, target, gpg_keys)

    assert outcome.report.ok and outcome.pre_restore_backup is None
    assert tables_in(pg, target) == ALL


def test_selected_tables_only(pg, store, made, gpg_keys):
    target = pg.database(empty=True)
    outcome = do_restore(store, made, target, gpg_keys, mode="tables",
                         tables=("companies", "public.pricing_items"))

    assert outcome.report.ok
    assert [t["table"] for t in outcome.report.tables] == ["public.companies",
                                                           "public.pricing_items"]
    assert tables_in(pg, target) == {"public.companies", "public.pricing_items"}


def test_schema_only_gives_empty_tables(pg, store, made, gpg_keys):
    target = pg.database(empty=True)
    outcome = do_restore(store, made, target, gpg_keys, mode="schema-only")

    assert outcome.report.ok
    assert all(t.rows == 0 for t in snapshot_of(target).values())
    assert tables_in(pg, target) == ALL


def test_data_only_into_the_existing_schema_after_a_pre_restore_backup(pg, store, made,
                                                                      gpg_keys):
    target = pg.database(empty=True)
    do_restore(store, made, target, gpg_keys, mode="schema-only")

    outcome = do_restore(store, made, target, gpg_keys, mode="data-only",
                         confirm=target.dbname)

    assert outcome.report.ok, outcome.report
    assert outcome.pre_restore_backup is not None


def test_single_stream_restore_when_the_dump_does_not_fit_on_disk(pg, store, made, gpg_keys,
                                                                  monkeypatch):
    monkeypatch.setattr(staging, "HEADROOM", 10.0**12)
    staged = []
    real_fetch = restore.fetch

    def spy(*args, **kwargs):
        with real_fetch(*args, **kwargs) as fetched:
            staged.append(fetched.path)
            yield fetched

    monkeypatch.setattr(restore, "fetch", restore.contextlib.contextmanager(spy))
    target = pg.database(empty=True)
    assert do_restore(store, made, target, gpg_keys).report.ok
    assert staged == [None]


def flip_one_bit(store, manifest) -> None:
    path = store.root / manifest.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_flipped_bit_stops_before_the_target_is_touched(pg, store, made, gpg_keys):
    flip_one_bit(store, made)
    target = pg.database(empty=True)

    with pytest.raises(IntegrityError, match=f"backup {made.id}: object .* does not match"):
        do_restore(store, made, target, gpg_keys)
    assert tables_in(pg, target) == set()


def test_a_truncated_object_is_an_integrity_failure(pg, store, made, gpg_keys):
    path = store.root / made.key
    path.write_bytes(path.read_bytes()[: made.size // 3])
    target = pg.database(empty=True)

    with pytest.raises(IntegrityError, match=rf"\({made.size // 3} bytes, expected {made.size}"):
        do_restore(store, made, target, gpg_keys)
    assert tables_in(pg, target) == set()


def test_the_wrong_private_key(pg, store, made, gpg_keys, other_keys):
    target = pg.database(empty=True)
    with pytest.raises(EncryptionError, match=f"does not decrypt .* {gpg_keys.fingerprint}"):
        restore.restore(store, made, target=target, request=RestoreRequest(),
                        private_key=other_keys.private)
    assert tables_in(pg, target) == set()


def test_a_selected_table_that_is_not_in_the_backup(pg, store, gpg_keys, db):
    only_quotes = run_backup(BackupRequest("quotepro", scope=Scope(tables=("quotes",))),
                             connection=db, store=store, recipient_keys=[gpg_keys.public])
    with pytest.raises(ConfigError, match="holds no rows of public.companies .*rows of "
                                          "public.quotes"):
        do_restore(store, only_quotes, pg.database(empty=True), gpg_keys, mode="tables",
                   tables=("companies",))


def test_a_non_empty_target_without_confirmation_is_refused_unchanged(pg, store, made,
                                                                      gpg_keys):
    target = pg.database()
    pg.sql(target, "DELETE FROM line_items WHERE id % 2 = 0")
    before = snapshot_of(target)

    with pytest.raises(ConfigError, match=f"already has tables; .* confirm .*'{target.dbname}'"):
        do_restore(store, made, target, gpg_keys)
    with pytest.raises(ConfigError, match="already has tables"):
        do_restore(store, made, target, gpg_keys, confirm="some-other-db")
    assert snapshot_of(target) == before
    assert [k for k in store.keys() if "pre-restore" in k] == []


def test_confirmed_restore_takes_a_restorable_pre_restore_backup_first(pg, store, made,
                                                                      gpg_keys):
    target = pg.database()
    pg.sql(target, "DELETE FROM line_items WHERE id % 2 = 0")  # the accident
    damaged = snapshot_of(target)

    outcome = do_restore(store, made, target, gpg_keys, confirm=target.dbname)

    assert outcome.report.ok, outcome.report
    pre = catalog.choose(store, outcome.pre_restore_backup)
    assert pre.retention == "pre-restore" and made.id in pre.reason
    assert pre.started_at < datetime.now(UTC)
    assert {f"{t.schema}.{t.name}": t.rows for t in pre.tables} == {
        name: t.rows for name, t in damaged.items()}
    report = prove.verify_backup(store, pre, server=pg.connection("postgres"),
                                 private_key=gpg_keys.private)
    assert report.ok


def test_verification_names_the_table_that_differs(pg, store, made, gpg_keys):
    target = pg.database(empty=True)
    do_restore(store, made, target, gpg_keys)
    pg.sql(target, "UPDATE quotes SET customer_name = 'tampered' WHERE id = 7")
    pg.sql(target, "DELETE FROM line_items WHERE id = 3")

    report = prove.check(made, target=target, checks=sample.QUOTEPRO_CHECKS)
    results, problems = report.tables, report.problems
    assert not report.ok
    differing = {t["table"]: t["result"] for t in results if t["result"] != "equal"}
    assert differing == {"public.quotes": "same row count, different contents",
                         "public.line_items": f"{made_rows(made, 'line_items') - 1} rows, "
                                              f"expected {made_rows(made, 'line_items')}"}
    assert any(p.startswith("health check record_counts") for p in problems)


def made_rows(manifest, name: str) -> int:
    return next(t.rows for t in manifest.tables if t.name == name)


def test_constraints_and_sequences_are_checked(pg, store, made, gpg_keys):
    target = pg.database(empty=True)
    do_restore(store, made, target, gpg_keys)
    pg.sql(target, "ALTER TABLE quotes DISABLE TRIGGER ALL; "
                   "DELETE FROM quotes WHERE id = 1; "
                   "ALTER TABLE quotes ENABLE TRIGGER ALL; "
                   "SELECT setval(pg_get_serial_sequence('companies', 'id'), 1)")

    report = prove.check(made, target=target)
    assert any("line_items_quote_id_fkey: 5 rows break the foreign key" in p
               for p in report.problems), report.problems
    assert any(p.startswith("sequence public.companies_id_seq: at 1 (called True), the backup "
                            "has ") for p in report.problems), report.problems
    assert any("companies_id_seq is at 1, behind public.companies.id" in n
               for n in report.notes), report.notes


def test_a_restore_counts_the_rows_that_break_a_key_left_not_valid(pg, store, db, gpg_keys):
    """A restore adds each foreign key after the rows, so PostgreSQL has checked every valid
    one; a key the backup holds NOT VALID is still scanned and its broken rows counted."""
    pg.sql(db, "ALTER TABLE line_items DROP CONSTRAINT line_items_quote_id_fkey; "
               "DELETE FROM quotes WHERE id = 1; "
               "ALTER TABLE line_items ADD CONSTRAINT line_items_quote_id_fkey "
               "FOREIGN KEY (quote_id) REFERENCES quotes (id) NOT VALID")
    broken = run_backup(BackupRequest("quotepro"), connection=db, store=store,
                        recipient_keys=[gpg_keys.public])

    report = prove.verify_backup(store, broken, server=pg.connection("postgres"),
                                 private_key=gpg_keys.private)

    assert not report.ok and all(t["result"] == "equal" for t in report.tables)
    assert sorted(report.problems) == [
        "public.line_items.line_items_quote_id_fkey: 5 rows break the foreign key",
        "public.line_items.line_items_quote_id_fkey: constraint left NOT VALID"]


def test_a_missing_extension_is_reported_before_restoring(pg, store, made, gpg_keys):
    needs_more = dataclasses.replace(made, extensions={
        **made.extensions, "postgis_x": {"version": "1.0", "schema": "public"}})
    target = pg.database(empty=True)
    with pytest.raises(SourceError, match="lacks extension.* postgis_x"):
        do_restore(store, needs_more, target, gpg_keys)
    assert tables_in(pg, target) == set()


def test_choose_latest_before_a_time_and_the_data_loss_window(db, store, gpg_keys):
    first = run_backup(BackupRequest("quotepro"), connection=db, store=store,
                       recipient_keys=[gpg_keys.public])
    second = run_backup(BackupRequest("quotepro"), connection=db, store=store,
                        recipient_keys=[gpg_keys.public])

    assert catalog.choose(store, "latest", database="quotepro").id == second.id
    cutoff = catalog.snapshot_time(second)
    assert catalog.choose(store, "latest", database="quotepro", before=cutoff).id == first.id
    incident = catalog.snapshot_time(first) + timedelta(hours=5)
    assert catalog.data_loss_window(first, incident) == timedelta(hours=5)
    with pytest.raises(NotFoundError, match="no DONE full backup of quotepro before"):
        catalog.choose(store, "latest", database="quotepro",
                       before=catalog.snapshot_time(first))


def test_a_postgres_15_source_restores_into_18_and_verifies(pg, pg15, store, gpg_keys):
    """Supabase still runs 15: dump with the newer pg_dump, restore into 18."""
    manifest = run_backup(BackupRequest("supabase"), connection=pg15, store=store,
                          recipient_keys=[gpg_keys.public])
    assert manifest.source["server_version"].startswith("15")

    report = prove.verify_backup(store, manifest, server=pg.connection("postgres"),
                                 private_key=gpg_keys.private)
    assert report.ok, report
    assert len(report.tables) == 5


def test_a_postgres_15_source_verifies_and_restores_into_15(pg15, store, gpg_keys):
    """In the cloud the scratch instance runs the source's major; pg_restore 18 writes a
    setting 15 does not know, which only the script form leaves out."""
    manifest = run_backup(BackupRequest("supabase"), connection=pg15, store=store,
                          recipient_keys=[gpg_keys.public])
    server = pg15.with_dbname("postgres")

    assert prove.verify_backup(store, manifest, server=server,
                               private_key=gpg_keys.private).ok
    with server.connect(autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS copy15")
        conn.execute("CREATE DATABASE copy15 TEMPLATE quotepro15")
    outcome = do_restore(store, manifest, server.with_dbname("copy15"), gpg_keys,
                         mode="data-only", tables=("quotes",), confirm="copy15")
    assert outcome.report.ok, outcome.report


def test_restoring_into_an_older_major_is_refused(pg15, store, made, gpg_keys):
    target = pg15.with_dbname("postgres")
    with pytest.raises(ConfigError, match="comes from PostgreSQL 18; target .* runs 15"):
        do_restore(store, made, target, gpg_keys)


def test_the_integrity_pre_check_alone(store, made, gpg_keys, other_keys):
    staging.check_object(store, made, gpg_keys.private)
    with pytest.raises(EncryptionError, match="does not decrypt"):
        staging.check_object(store, made, other_keys.private)
    flip_one_bit(store, made)
    with pytest.raises(IntegrityError, match="sha256 differs"):
        staging.check_object(store, made, gpg_keys.private)


def test_restore_keeps_the_password_and_private_key_out_of_argv_and_logs(
        pg, store, made, gpg_keys, other_keys, caplog, capfd, monkeypatch):
    argv: list[str] = []
    real_popen = subprocess.Popen

    def spy(args, *rest, **kwargs):
        argv.append(" ".join(str(a) for a in args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    caplog.set_level(logging.DEBUG)
    key_body = gpg_keys.private.splitlines()[3]  # a line of the key material itself

    do_restore(store, made, pg.database(empty=True), gpg_keys)
    with pytest.raises(EncryptionError) as wrong:
        restore.restore(store, made, target=pg.database(empty=True), request=RestoreRequest(),
                        private_key=other_keys.private)

    out, err = capfd.readouterr()
    seen = "\n".join([*argv, caplog.text, out, err, str(wrong.value)])
    assert any("pg_restore" in a for a in argv)
    assert pg.password not in seen
    assert key_body not in seen and other_keys.private.splitlines()[3] not in seen


def test_a_role_that_may_not_create_databases_gets_one_clear_line(pg, store, made, gpg_keys):
    pg.sql(pg.connection("postgres"), "CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    plain = dataclasses.replace(pg.connection("postgres"), user="plain", password="plain-pw")
    try:
        with pytest.raises(SourceError, match="refused: permission denied to create database"):
            prove.verify_backup(store, made, server=plain, private_key=gpg_keys.private)
    finally:
        pg.sql(pg.connection("postgres"), "DROP ROLE plain")
