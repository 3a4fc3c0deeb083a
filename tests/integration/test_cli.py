"""The `backstop` command: backup, list, show; exit codes and one-line errors."""

from __future__ import annotations

import json

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


def test_errors_are_one_line_with_an_exit_code(pg, db, gpg_keys, tmp_path, monkeypatch, capsys):
    key = tmp_path / "recipient.asc"
    key.write_text(gpg_keys.public)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", pg.url(db.dbname))

    code = main(["backup", "--store", str(tmp_path), "--recipient-key", str(key),
                 "--table", "missing_table"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "table 'missing_table' does not exist" in err

    assert main(["show", "20260101T000000Z-000000", "--store", str(tmp_path)]) == 7
    assert "no backup 20260101T000000Z-000000" in capsys.readouterr().err


def test_a_password_on_the_command_line_is_refused(pg, db, tmp_path, capsys):
    code = main(["backup", "--store", str(tmp_path), "--db-url", pg.url(db.dbname)])
    err = capsys.readouterr().err
    assert code == 2 and "holds a password" in err
    assert pg.password not in err
