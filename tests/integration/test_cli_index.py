"""The command line's backups and restore tests count: they go into the database's index
(what the RPO check, the verified-age alarm and the runner choice read), in a local directory
and in S3, and an index that cannot be updated never fails a backup that is done."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from backstop import index
from backstop.cli import main
from backstop.store import open_store


@pytest.fixture
def keys(gpg_keys, tmp_path, monkeypatch) -> None:
    public, private = tmp_path / "public.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    monkeypatch.setenv("BACKSTOP_RECIPIENT_KEYS", str(public))
    monkeypatch.setenv("BACKSTOP_PRIVATE_KEY", str(private))


def backup(store: str, capsys) -> tuple[str, str]:
    """The backup's id, and what the command wrote to stderr."""
    assert main(["backup", "--store", store, "--database", "quotepro", "--json"]) == 0
    printed = capsys.readouterr()
    return json.loads(printed.out)["id"], printed.err


def backup_process(store: str) -> tuple[str, str]:
    """The same, as its own process: its stderr is only what the command writes there (in
    this process, loggers other tests configured may take Backstop's warnings)."""
    done = subprocess.run([sys.executable, "-m", "backstop.cli", "backup", "--store", store,
                           "--database", "quotepro", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"], done.stderr


def verify(store: str, capsys) -> None:
    assert main(["verify", "latest", "--database", "quotepro", "--store", store]) == 0
    assert "VERIFIED" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_a_cli_backup_then_verify_update_the_index(where, pg, db, keys, tmp_path, monkeypatch,
                                                  capsys, request):
    if where == "s3":
        request.getfixturevalue("s3")  # moto's S3, with a bucket named backups
    store = "s3://backups/ops" if where == "s3" else str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))

    made, _ = backup(store, capsys)

    doc = index.read(open_store(store), "quotepro")
    assert doc is not None and [b["id"] for b in doc["backups"]] == [made]
    assert doc["newest_good"]["id"] == made and doc["newest_verified"] is None
    assert doc["backups"][0]["runner"] is None  # no runner placed it: the command line

    verify(store, capsys)

    doc = index.read(open_store(store), "quotepro")
    assert doc["newest_verified"]["id"] == made and doc["newest_verified"]["verified"] is True
    (measured,) = doc["restores"]
    assert measured["backup_id"] == made and measured["ok"] is True
    assert measured["seconds"] > 0 and measured["runner"] is None
    ages = index.ages(doc, now=datetime.now(UTC))
    assert (ages.newest_full, ages.newest_verified) == (made, made)
    assert ages.recovery_hours < 0.1 and ages.verified_hours < 0.1


def test_a_damaged_index_does_not_fail_a_backup_and_is_rebuilt_once_deleted(
        pg, db, keys, tmp_path, monkeypatch, capsys):
    store = str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))
    verified, _ = backup(store, capsys)
    verify(store, capsys)
    damaged = tmp_path / "backups" / "index" / "quotepro.json"
    damaged.write_text("{not json")

    # When a backup cannot update the index
    newest, err = backup_process(store)

    # Then the backup is done and says so, with one warning line naming the way out
    (warning,) = [line for line in err.splitlines() if line.startswith("backstop: ")]
    assert warning.startswith(f"backstop: warning: backup {newest} is stored, but index "
                              "index/quotepro.json")
    assert "delete that object and it is rebuilt from the manifests" in warning
    assert main(["list", "--store", store, "--json"]) == 0
    assert [b["status"] for b in json.loads(capsys.readouterr().out)] == ["DONE", "DONE"]

    # and once deleted, the index is rebuilt from the manifests with the restore measured,
    # even when a backup wrote a new one first
    damaged.unlink()
    last, _ = backup(store, capsys)
    doc = index.ensure(open_store(store), "quotepro")
    assert [b["id"] for b in doc["backups"]] == [last, newest, verified]
    assert (doc["newest_good"]["id"], doc["newest_verified"]["id"]) == (last, verified)
    (measured,) = doc["restores"]
    assert measured["backup_id"] == verified and measured["seconds"] > 0
    assert index.read(open_store(store), "quotepro") == doc
