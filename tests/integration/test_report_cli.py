"""`backstop report`, `backstop acknowledge` and `backstop list --csv` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from backstop.cli import main
from backstop.manifest import Manifest
from backstop.store import open_store
from tests.integration import year


def test_report_prints_the_checklist_and_writes_the_html(faulty_store: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    settings = tmp_path / "deploy.json"  # a deployment config file, as cdk reads it
    settings.write_text(json.dumps({"databases": [{"name": "quotepro", "secret": "s"}],
                                    "rto_minutes": 90, "recipients": []}))
    html = tmp_path / "out.html"
    code = main(["report", "--store", str(faulty_store), "--month", "2025-12", "--settings",
                 str(settings), "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 9  # an item failed
    assert out.startswith(f"Backup verification checklist 2025-12 ({faulty_store}): FAIL")
    assert "[FAIL] Verify automated backups are running daily" in out
    assert "MISSING 2025-12-16..2025-12-17" in out
    assert "[DUE] Train team on restore procedures" in out
    assert "OVER RTO" not in out  # 75 minutes is within the configured 90
    assert out.rstrip().endswith(f"HTML: {html}")
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "MISSING 2025-12-16..2025-12-17" in page


def test_acknowledge_then_report_as_json(faulty_store: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(faulty_store, store)
    assert main(["acknowledge", "review-procedures", "--store", str(store), "--by", "dana",
                 "--note", "runbook v3 reviewed"]) == 0
    assert capsys.readouterr().out.startswith("review-procedures acknowledged ")
    assert main(["report", "--store", str(store), "--json", "--html",
                 str(tmp_path / "r.html")]) == 9
    got = json.loads(capsys.readouterr().out)
    (item,) = [i for i in got["items"] if i["id"] == "review-procedures"]
    assert item["status"] == "PASS" and item["summary"].endswith("by dana")
    assert got["html"] == str(tmp_path / "r.html")


def test_acknowledge_refuses_an_item_not_about_people(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["acknowledge", "retention", "--store", str(tmp_path)])
    assert refused.value.code == 2
    assert "invalid choice: 'retention'" in capsys.readouterr().err


def test_report_refuses_bad_settings_in_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "s.json"
    settings.write_text('{"databases": [{"name": "q", "schedules": ["hourly"]}]}')
    assert main(["report", "--store", str(tmp_path), "--settings", str(settings)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "databases[0].schedules" in err
    assert main(["report", "--store", str(tmp_path), "--month", "2031-01"]) == 2
    assert "has not begun" in capsys.readouterr().err


def test_list_csv_has_the_runbook_log_columns(faulty_store: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--store", str(faulty_store), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[:9] == ["Date", "Time", "Type", "Filename", "Size", "Reason",
                                 "Verified", "Stored", "Retention"]
    keys = [k for k in open_store(str(faulty_store)).keys() if k.endswith(".manifest.json")]
    assert len(rows) == len(keys)
    (failed,) = [r for r in rows if r["Status"] == "FAILED"]
    assert failed["Date"] == "2025-12-16" and failed["Size"] == "-"
    (tested_bad,) = [r for r in rows if r["Verified"] == "FAILED"]
    assert tested_bad["Date"] == "2025-12-09" and tested_bad["Type"] == "daily"
    manual = [r for r in rows if r["Type"] == "manual"]
    assert len(manual) == 12 and manual[0]["Reason"] == "before release"
    assert manual[0]["Retention"] == "as configured" and manual[0]["Time"] == "14:30 UTC"


def test_list_csv_keeps_a_reason_from_becoming_a_formula(base: Manifest, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    store = open_store(str(tmp_path))
    year.commit(store, base.__class__.from_dict({**base.to_dict(),
                                                "reason": "=HYPERLINK(\"http://x\")"}), b"")
    assert main(["list", "--store", str(tmp_path), "--csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["Reason"] == "'=HYPERLINK(\"http://x\")"
