"""The `backstop` command: backup, list, show; exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest

from backstop.cli import main


def test_backup_list_show(pg, db, gpg_keys, tmp_path, monkeypatch, capsys):
    key = tmp_path / "recipient.asc"
    key.write_text(gpg_keys.public)
    store = str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))

    assert main(["backup", "--store", store, "--database", "quotepro", "--recipient-key",
                 str(key), "--retention", "pre-migration", "--reason", "before v2 schema",
                 "--json"]) == 0
    made = json.loads(capsys.readouterr().out)

    assert main(["list", "--store", store, "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["type"] == "pre-migration" and entry["status"] == "DONE"
    assert entry["reason"] == "before v2 schema" and entry["retention"] == "permanent"
    assert entry["file"] == made["key"].rsplit("/", 1)[1]

    assert main(["list", "--store", store]) == 0
    table = capsys.readouterr().out
    assert "Verified" in table and "before v2 schema" in table

    assert main(["show", made["id"], "--store", store]) == 0
    shown = capsys.readouterr().out
    assert made["sha256"] in shown and "public.quotes" in shown
    assert "(skipped: size)" not in shown


def test_counts_only_when_asked(pg, db, gpg_keys, tmp_path, monkeypatch, capsys):
    key = tmp_path / "recipient.asc"
    key.write_text(gpg_keys.public)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))
    assert main(["backup", "--store", str(tmp_path), "--recipient-key", str(key), "--json",
                 "--fingerprint-limit-mb", "0"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["fingerprint_limit_bytes"] == 0
    assert all(t["fingerprint"] is None and t["rows"] >= 0 for t in made["tables"])


def test_errors_are_one_line_with_an_exit_code(pg, db, gpg_keys, tmp_path, monkeypatch, capsys):
    key = tmp_path / "recipient.asc"
    key.write_text(gpg_keys.public)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))

    code = main(["backup", "--store", str(tmp_path), "--recipient-key", str(key),
                 "--table", "missing_table"])
    err = capsys.readouterr().err
    assert code == 2  # bad input
    assert err.count("\n") == 1 and "table 'missing_table' is not in database" in err

    assert main(["show", "20260101T000000Z-000000", "--store", str(tmp_path)]) == 7
    assert "no backup 20260101T000000Z-000000" in capsys.readouterr().err


def test_a_password_on_the_command_line_is_refused(pg, db, tmp_path, capsys):
    code = main(["backup", "--store", str(tmp_path), "--db-url", pg.url(db.dbname)])
    err = capsys.readouterr().err
    assert code == 2 and "holds a password" in err
    assert pg.password not in err


def test_verify_and_restore_commands(pg, db, gpg_keys, tmp_path, monkeypatch, capsys):
    public, private = tmp_path / "public.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    store = str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))
    monkeypatch.setenv("BACKSTOP_RECIPIENT_KEYS", str(public))
    monkeypatch.setenv("BACKSTOP_PRIVATE_KEY", str(private))
    assert main(["backup", "--store", store, "--database", "quotepro", "--quiet",
                 "--check", "newest_quote=SELECT max(created_at) FROM quotes"]) == 0

    assert main(["verify", "latest", "--database", "quotepro", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and "tables matched   5 of 5" in out
    assert main(["list", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["verified"] == "yes"

    target = pg.database()
    monkeypatch.setenv("BACKSTOP_TARGET_URL", pg.url(target.dbname))
    assert main(["restore", "latest", "--database", "quotepro", "--store", store]) == 2
    assert "confirm with the database name" in capsys.readouterr().err

    assert main(["restore", "latest", "--database", "quotepro", "--store", store, "--confirm",
                 target.dbname, "--incident-at", "2099-01-01T00:00:00Z", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["report"]["ok"] and result["pre_restore_backup"]
    assert result["data_loss_window_seconds"] > 0


def test_verify_can_use_a_separate_scratch_server(pg, db, gpg_keys, tmp_path, monkeypatch,
                                                  capsys):
    public, private = tmp_path / "public.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    store = str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))
    assert main(["backup", "--store", store, "--database", "quotepro", "--quiet",
                 "--recipient-key", str(public)]) == 0
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/production")
    monkeypatch.setenv("BACKSTOP_SCRATCH_URL", pg.url("postgres"))

    assert main(["verify", "latest", "--database", "quotepro", "--store", store,
                 "--private-key", str(private)]) == 0
    assert "VERIFIED" in capsys.readouterr().out


def test_malformed_times_are_refused_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["restore", "latest", "--before", "yesterday-ish"])
    assert "not an ISO time" in capsys.readouterr().err


@pytest.fixture
def backed_up(pg, db, gpg_keys, tmp_path, monkeypatch) -> str:
    """A backup of `db` in a store (returned), the private key in BACKSTOP_PRIVATE_KEY."""
    public, private = tmp_path / "public.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    store = str(tmp_path / "backups")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))
    monkeypatch.setenv("BACKSTOP_PRIVATE_KEY", str(private))
    assert main(["backup", "--store", store, "--database", "quotepro", "--quiet",
                 "--recipient-key", str(public)]) == 0
    return store


def test_check_proves_an_existing_database_read_only(pg, db, backed_up, monkeypatch, capsys):
    store = backed_up
    monkeypatch.setenv("BACKSTOP_TARGET_URL", pg.url(db.dbname))

    assert main(["check", "latest", "--database", "quotepro", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and "compared" in out and "schema" in out

    pg.sql(db, "UPDATE quotes SET customer_name = 'changed' WHERE id = 3")
    assert main(["check", "latest", "--database", "quotepro", "--store", store,
                 "--table", "public.quotes"]) == 9
    out = capsys.readouterr().out
    assert "VERIFICATION FAILED" in out and "public.quotes" in out
    assert "different contents" in out


def test_bad_restore_input_is_refused_before_anything_happens(pg, backed_up, monkeypatch,
                                                              capsys):
    store = backed_up
    target = pg.database(empty=True)
    monkeypatch.setenv("BACKSTOP_TARGET_URL", pg.url(target.dbname))
    base = ["restore", "latest", "--database", "quotepro", "--store", store]

    assert main([*base, "--incident-at", "2000-01-01T00:00:00Z"]) == 2
    assert "is before backup" in capsys.readouterr().err
    assert main([*base, "--mode", "tables", "--table", "no_such"]) == 2
    assert "'no_such' is not in backup" in capsys.readouterr().err
    assert main([*base, "--mode", "tables", "--table", '"unclosed']) == 2
    assert "unclosed double quote" in capsys.readouterr().err
    assert pg.sql(target, "SELECT count(*) FROM pg_class WHERE relnamespace = "
                          "'public'::regnamespace") == [(0,)]
