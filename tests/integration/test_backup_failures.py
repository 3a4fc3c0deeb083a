"""Every failure says what is wrong and leaves nothing that looks like a backup."""

from __future__ import annotations

import json
import logging
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from backstop import index
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.errors import ConfigError, DumpError, EncryptionError, SourceError, StoreError
from backstop.manifest import DONE, FAILED, Scope
from backstop.store import LocalStore, open_store
from tests.integration.test_backup import Hooked, backup, pg_dump_children
from tests.support.gpghome import gpg_home


def done_manifests(store) -> list[dict]:
    return [m for m in (json.loads(store.get(k)) for k in store.keys()
                        if k.endswith(".manifest.json")) if m["status"] == DONE]


def objects(store) -> list[str]:
    """What the store holds besides manifests and the database's index."""
    return [k for k in store.keys()
            if not k.endswith(".manifest.json") and not k.startswith("index/")]


def manifests(store) -> list[dict]:
    return [json.loads(store.get(k)) for k in store.keys() if k.endswith(".manifest.json")]


def test_no_recipient_key_is_refused_before_touching_anything(db, tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(ConfigError, match="no recipient public key"):
        run_backup(BackupRequest("quotepro"), connection=db, store=store, recipient_keys=[])
    assert list(store.keys()) == []


def test_a_key_that_is_not_a_key_is_named(db, tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(EncryptionError, match="recipient public key #1 is not a usable"):
        run_backup(BackupRequest("quotepro"), connection=db, store=store,
                   recipient_keys=["-----BEGIN PGP PUBLIC KEY BLOCK-----\ngarbage\n"])
    assert list(store.keys()) == []


def test_a_key_that_cannot_encrypt_fails_and_stores_nothing(db, tmp_path):
    with gpg_home() as gpg:
        subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "signer <s@test.invalid>",
                        "ed25519", "sign", "never"], check=True, capture_output=True)
        sign_only = subprocess.run([*gpg, "--armor", "--export"], check=True,
                                   capture_output=True).stdout.decode()
    store = LocalStore(tmp_path / "store")

    with pytest.raises(EncryptionError, match="cannot encrypt .* signing-only key"):
        run_backup(BackupRequest("quotepro"), connection=db, store=store,
                   recipient_keys=[sign_only])
    assert objects(store) == []
    assert done_manifests(store) == []


def test_unreachable_database(gpg_keys, tmp_path):
    nowhere = Connection(host="127.0.0.1", port=1, dbname="quotepro", user="backstop",
                         password="s3cret-never-shown", sslmode="disable")
    store = LocalStore(tmp_path)
    with pytest.raises(SourceError, match="cannot connect to database quotepro on 127.0.0.1:1"
                       ) as caught:
        backup(nowhere, store, gpg_keys)
    assert "s3cret-never-shown" not in str(caught.value)
    assert list(store.keys()) == []


def test_wrong_password(pg, db, gpg_keys, tmp_path):
    wrong = Connection(**{**db.__dict__, "password": "not-the-password"})
    with pytest.raises(SourceError, match="password authentication failed") as caught:
        backup(wrong, LocalStore(tmp_path), gpg_keys)
    assert "not-the-password" not in str(caught.value)


def test_a_role_without_rights_gets_a_clear_error_and_a_failed_record(pg, db, gpg_keys,
                                                                      tmp_path):
    pg.sql(db, "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; "
               "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC")
    reader = Connection(**{**db.__dict__, "user": "reader", "password": "reader-pw"})
    store = LocalStore(tmp_path)
    try:
        with pytest.raises(SourceError, match="permission denied .* check the role's rights"):
            backup(reader, store, gpg_keys)
    finally:
        pg.sql(db, "DROP OWNED BY reader; DROP ROLE reader")
    assert objects(store) == [] and done_manifests(store) == []
    assert [m["status"] for m in manifests(store)] == [FAILED]


def test_a_runners_failure_is_in_the_index_once_manifest_or_not(gpg_keys, db, tmp_path):
    # Given the function's runner: a database it cannot reach (no manifest is written), then
    # a dump stopped at its deadline (a FAILED manifest says why)
    store = LocalStore(tmp_path)
    nowhere = Connection(host="127.0.0.1", port=1, dbname="quotepro", user="backstop",
                         sslmode="disable")
    with pytest.raises(SourceError):
        backup(nowhere, store, gpg_keys, runner="lambda")
    (early,) = index.read(store, "quotepro")["backups"]
    assert (early["id"], early["status"], early["runner"]) == (None, FAILED, "lambda")
    assert early["stopped_at_deadline"] is False and "cannot connect" in early["error"]

    with pytest.raises(DumpError, match="time limit"):
        backup(db, store, gpg_keys, runner="lambda", deadline=time.monotonic())

    (failed,) = manifests(store)
    stopped, first = index.read(store, "quotepro")["backups"]
    assert first == early  # each failure once, newest first
    assert (stopped["id"], stopped["status"], stopped["runner"]) == (failed["id"], FAILED,
                                                                      "lambda")
    assert stopped["stopped_at_deadline"] is True
    assert stopped["manifest_key"].endswith(f"{failed['id']}.manifest.json")


def test_a_table_that_does_not_exist(db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(ConfigError, match="table 'no_such_table' is not in database"):
        backup(db, store, gpg_keys, Scope("full", tables=("quotes", "no_such_table")))
    assert objects(store) == []
    assert done_manifests(store) == []


def test_pg_dump_killed_mid_stream_aborts_the_upload(db, gpg_keys, s3):
    store = open_store("s3://backups/prod", s3_client=s3)
    # A dump several times what the pipes, the compressor and gpg hold between them, so
    # pg_dump is still writing when the first encrypted chunk reaches the store however the
    # threads are scheduled: with the sample alone (about 15 MB of dump) pg_dump once ended
    # first on a loaded machine and the backup succeeded.
    with db.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS a, "
                     "md5((-g)::text) AS b FROM generate_series(1, 500000) g")

    def kill_pg_dump() -> None:
        for process in pg_dump_children():
            process.kill()

    with pytest.raises(DumpError, match="pg_dump of .* failed .*nothing was stored"):
        backup(db, Hooked(store, kill_pg_dump), gpg_keys)

    assert s3.list_multipart_uploads(Bucket="backups").get("Uploads", []) == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="backups").get("Contents", [])]
    assert [k for k in keys if k.endswith(".dump.zst.gpg")] == []
    (manifest_key,) = [k for k in keys if k != "prod/index/quotepro.json"]
    assert json.loads(s3.get_object(Bucket="backups", Key=manifest_key)["Body"].read()
                      )["status"] == FAILED


def test_a_store_that_rejects_writes(db, gpg_keys, tmp_path, s3):
    with pytest.raises(StoreError, match="cannot start upload .* NoSuchBucket"):
        backup(db, open_store("s3://no-such-bucket", s3_client=s3), gpg_keys)

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store should be")
    with pytest.raises(StoreError, match="cannot write to"):
        backup(db, LocalStore(blocker), gpg_keys)
    assert blocker.read_text() == "a file where the store should be"


def test_a_failed_upload_part_aborts_and_records_failure(db, gpg_keys, s3, monkeypatch):
    store = open_store("s3://backups", s3_client=s3)

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "UploadPart")

    monkeypatch.setattr(s3, "upload_part", refuse)
    with pytest.raises(StoreError, match="cannot upload part 1 .* AccessDenied"):
        backup(db, store, gpg_keys)
    assert s3.list_multipart_uploads(Bucket="backups").get("Uploads", []) == []
    assert done_manifests(store) == []
    assert pg_dump_children() == []


HOSTILE = ['x"; DROP TABLE quotes; --', "$(touch /tmp/backstop-pwned)", "a*b?c.d", "Ünï code"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_table_names_are_data_not_code(pg, db, gpg_keys, tmp_path, name):
    quoted = '"' + name.replace('"', '""') + '"'
    pg.sql(db, f"CREATE TABLE {quoted} (v int); INSERT INTO {quoted} VALUES (1), (2)")
    pg.sql(db, "CREATE TABLE a_b_c_d (v int)")  # would match a*b?c.d as a pattern
    store = LocalStore(tmp_path)

    manifest = backup(db, store, gpg_keys, Scope("full", tables=(quoted,)))

    assert [(t.name, t.rows) for t in manifest.tables] == [(name, 2)]
    assert pg.sql(db, "SELECT count(*) FROM quotes")[0][0] > 0
    from tests.integration.test_backup import restored
    got = restored(pg, store, manifest, gpg_keys)
    assert {table for table, stats in got.items() if stats.rows} == {f"public.{name}"}


def test_the_password_never_leaks(pg, db, gpg_keys, tmp_path, caplog, capfd, monkeypatch):
    argv: list[list[str]] = []
    envs: list[dict[str, str]] = []
    real_popen = subprocess.Popen

    def spy(args, *rest, **kwargs):
        argv.append([str(a) for a in args])
        envs.append(dict(kwargs.get("env") or {}))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    caplog.set_level(logging.DEBUG)
    store = LocalStore(tmp_path)

    manifest = backup(db, store, gpg_keys)
    with pytest.raises(ConfigError) as missing:
        backup(db, store, gpg_keys, Scope("full", tables=("nope",)))

    secret = pg.password
    out, err = capfd.readouterr()
    assert argv and any("pg_dump" in a[0] for a in argv)
    assert all(secret not in " ".join(a) for a in argv)
    assert all(secret not in " ".join(env.values()) for env in envs)
    assert secret not in caplog.text + out + err + str(missing.value) + repr(db)
    for key in store.keys():
        assert secret.encode() not in store.get(key)
    assert secret not in json.dumps(manifest.to_dict())


def test_counts_that_outlast_the_deadline_stop_the_backup(db, gpg_keys, tmp_path, monkeypatch):
    # Given counts that take longer than the runner has left (the dump itself is quick)
    from backstop import snapshot

    original = snapshot.record

    def slow(conn, *args):
        conn.execute("SELECT pg_sleep(600)")  # cancelled, as a long count would be
        return original(conn, *args)

    monkeypatch.setattr(snapshot, "record", slow)
    store = LocalStore(tmp_path)
    started = time.monotonic()
    with pytest.raises(DumpError, match="time limit"):
        run_backup(BackupRequest("quotepro"), connection=db, store=store,
                   recipient_keys=[gpg_keys.public], deadline=time.monotonic() + 20)
    # ... the backup stops at the deadline, not when the counts end, and records why
    assert time.monotonic() - started < 60
    assert objects(store) == []
    (failed,) = [json.loads(store.get(k)) for k in store.keys() if k.endswith(".manifest.json")]
    assert failed["status"] == FAILED and "time limit" in failed["error"]


def test_a_health_check_that_fails_stops_the_dump_and_stores_nothing(db, gpg_keys, tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(ConfigError, match="health check 'broken' failed: division by zero"):
        run_backup(BackupRequest("quotepro", checks={"broken": "SELECT 1 / 0"}),
                   connection=db, store=store, recipient_keys=[gpg_keys.public])
    assert objects(store) == [] and done_manifests(store) == []
    (failed,) = manifests(store)
    assert failed["status"] == FAILED and "division by zero" in failed["error"]
    assert pg_dump_children() == []


def test_setting_stop_ends_a_dump_at_once(gpg_keys, tmp_path):
    """What a failed check or count does to the dump beside it: a dump that would run for a
    minute ends within moments, with nothing committed."""
    import os
    import threading

    from backstop import pipeline
    from backstop.crypto import Keyring

    store, stop = LocalStore(tmp_path), threading.Event()
    timer = threading.Timer(0.5, stop.set)
    started = time.monotonic()
    with Keyring() as keyring:
        recipients = keyring.import_keys([gpg_keys.public], what="recipient public key")
        writer = store.writer("daily/db/x.dump.zst.gpg")
        timer.start()
        with pytest.raises(DumpError, match="exit -9"):
            pipeline.dump_to(writer, args=["sleep", "60"], env=dict(os.environ),
                             keyring=keyring, recipients=recipients, describe=str, stop=stop)
        writer.abort()
    assert time.monotonic() - started < 30
    assert list(store.keys()) == []


def test_a_check_whose_connection_is_cut_names_the_database_not_the_check(pg, db, gpg_keys,
                                                                         tmp_path):
    import threading

    store = LocalStore(tmp_path)
    slow = "SELECT count(*) FROM generate_series(1, 400000000)"
    cut: list[object] = []

    def terminate_the_check() -> None:
        deadline = time.monotonic() + 60
        while not cut and time.monotonic() < deadline:
            cut.extend(pg.sql(db.with_dbname("postgres"),
                              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE query = '{slow}'"))
            time.sleep(0.05)

    killer = threading.Thread(target=terminate_the_check)
    killer.start()
    with pytest.raises(SourceError) as failed:
        run_backup(BackupRequest("quotepro", checks={"slow": slow}), connection=db,
                   store=store, recipient_keys=[gpg_keys.public])
    killer.join()
    assert cut, "the check never ran"
    assert "terminating connection" in str(failed.value) and db.dbname in str(failed.value)
    assert "fix its SQL" not in str(failed.value)
    assert objects(store) == [] and done_manifests(store) == []
