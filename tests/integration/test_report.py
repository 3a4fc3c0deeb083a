"""The monthly checklist over a local store holding a generated year of backups: healthy data
passes, and each injected fault turns its own item to FAIL with the evidence named."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backstop import report
from backstop.errors import ConfigError
from backstop.manifest import Manifest
from backstop.report_model import DUE, FAIL, INFO, PASS, Period, Report, Settings
from backstop.store import open_store
from tests.integration import year


def checklist(root: Path, settings: Settings = year.SETTINGS) -> Report:
    period = Period.month(year.MONTH, now=year.REPORT_NOW)
    return report.build(open_store(str(root)), settings, period, now=year.REPORT_NOW,
                        sources=report.Sources())


@pytest.fixture(scope="module")
def healthy(months_before: Path, base: Manifest, tmp_path_factory: pytest.TempPathFactory
            ) -> Path:
    return year.december(months_before, base, tmp_path_factory.mktemp("healthy") / "store",
                    year.Faults())


@pytest.fixture(scope="module")
def faulty(faulty_store: Path) -> Report:
    return checklist(faulty_store)


def test_a_healthy_year_passes_every_item_its_backups_answer(healthy: Path) -> None:
    got = checklist(healthy)
    for item_id in ("automated-backups", "manual-backup", "backup-sizes", "restore-tests",
                    "rpo"):
        assert got.item(item_id).status == PASS, got.item(item_id)
    # Counted independently of the report: the store's own December daily manifests.
    dailies = [k for k in open_store(str(healthy)).keys("daily/quotepro/2025/12/")
               if k.endswith(".manifest.json")]
    assert len(dailies) == 31
    assert "quotepro daily: 31 of 31 days" in got.item("automated-backups").evidence
    assert "quotepro weekly: 4 of 4 days" in got.item("automated-backups").evidence
    restore_tests = got.item("restore-tests").evidence[0]
    assert restore_tests.startswith("quotepro: 31 restore tests, 31 passed, 0 failed")
    assert got.item("rpo").summary.startswith("every gap between full backups stayed within 24 h")
    assert [c.title for c in got.item("backup-sizes").charts] == [
        "quotepro (full): backup size"]
    assert len(got.item("backup-sizes").charts[0].points) == 31 + 4 + 1 + 1


def test_a_local_store_is_neither_off_platform_nor_under_retention(healthy: Path) -> None:
    got = checklist(healthy)
    copies, kept = got.item("off-platform-copies"), got.item("retention")
    assert copies.status == FAIL and "local directory" in copies.summary
    # Kept by retention on Jan 1, 06:30: the dailies younger than 7 days (26th-31st), the 4
    # weeklies, the monthly and the manual backup.
    assert copies.evidence[0] == "12 of 12 backups kept by retention are present on disk"
    assert kept.status == FAIL and "nothing expires" in kept.summary
    assert got.status == FAIL


def test_missing_days_fail_automated_backups_naming_the_days_and_the_failure(
        faulty: Report) -> None:
    item = faulty.item("automated-backups")
    assert item.status == FAIL
    assert item.summary == "2 scheduled day(s) without a backup"
    assert "quotepro daily: 29 of 31 days; MISSING 2025-12-16..2025-12-17" in item.evidence
    (failure,) = [line for line in item.evidence if "FAILED" in line]
    assert "2025-12-16" in failure and "connection refused" in failure


def test_a_collapsed_backup_fails_sizes_naming_the_backup_and_its_trend(faulty: Report) -> None:
    item = faulty.item("backup-sizes")
    assert item.status == FAIL
    (line,) = [e for e in item.evidence if "COLLAPSED" in e]
    assert line.startswith("20251220T02") and "0.10 of the trend" in line
    bad = [p for p in item.charts[0].points if p[2]]
    assert [p[0] for p in bad] == ["12-20"]


def test_a_failed_and_a_slow_restore_test_fail_restore_tests_with_why(faulty: Report) -> None:
    item = faulty.item("restore-tests")
    assert item.status == FAIL
    (failure,) = [e for e in item.evidence if "newest FAILURE" in e]
    assert "2025-12-09" in failure and "public.quotes: 1999 rows restored" in failure
    (slow,) = [e for e in item.evidence if "OVER RTO" in e]
    assert "2025-12-03" in slow and "75.0 min" in slow
    assert sum(p[2] for p in item.charts[0].points) == 2
    assert item.charts[0].limit == 60


def test_a_gap_fails_the_rpo_naming_the_window(faulty: Report) -> None:
    item = faulty.item("rpo")
    assert item.status == FAIL
    (line,) = [e for e in item.evidence if e.startswith("quotepro: worst window")]
    assert "72.0 h OVER the RPO of 24 h" in line
    assert "from 20251215T02" in line and "to 20251218T02" in line


def test_a_backup_whose_restore_test_failed_is_no_recovery_point(faulty: Report) -> None:
    # The 10th: the daily backup (48 h after the 8th's: the 9th does not count), then the
    # manual one, a full backup too.
    daily, manual = [p for p in faulty.item("rpo").charts[0].points if p[0] == "12-10"]
    assert daily[1] == pytest.approx(48, abs=0.1) and daily[2]
    assert manual[1] == pytest.approx(12.5, abs=0.1) and not manual[2]


def test_each_fault_leaves_the_other_items_as_they_were(faulty: Report) -> None:
    assert faulty.item("manual-backup").status == PASS
    assert faulty.item("pitr").status == INFO
    assert "not watched" in faulty.item("pitr").evidence[0]


def test_people_items_are_due_until_acknowledged_in_the_month(healthy: Path, tmp_path: Path
                                                              ) -> None:
    root = tmp_path / "store"
    shutil.copytree(healthy, root)
    store = open_store(str(root))
    report.acknowledge(store, "train-team", by="dana", note="restore drill, 4 people",
                       now=datetime(2025, 11, 20, tzinfo=UTC))
    before = checklist(root).item("train-team")
    assert before.status == DUE and "last acknowledged 2025-11-20 by dana" in before.summary
    report.acknowledge(store, "train-team", by="lee", note="quarterly drill",
                       now=datetime(2025, 12, 18, 9, 30, tzinfo=UTC))
    got = checklist(root)
    assert got.item("train-team").status == PASS
    assert got.item("train-team").summary == "acknowledged 2025-12-18 by lee"
    assert got.item("train-team").evidence == ("2025-12-18T09:30 lee: quarterly drill",)
    assert got.item("review-procedures").status == DUE


def test_an_acknowledgement_names_a_people_item_and_a_person(healthy: Path) -> None:
    store = open_store(str(healthy))
    with pytest.raises(ConfigError, match="not an item about people"):
        report.acknowledge(store, "retention", by="dana")
    with pytest.raises(ConfigError, match="who acknowledges"):
        report.acknowledge(store, "train-team", by=" ")


def test_without_settings_every_database_found_is_expected_daily(healthy: Path) -> None:
    got = checklist(healthy, Settings())
    assert got.item("automated-backups").evidence == ("quotepro daily: 31 of 31 days",)
    assert got.item("automated-backups").status == PASS


def test_a_database_configured_but_never_backed_up_fails(healthy: Path) -> None:
    settings = Settings.from_dict({"databases": [{"name": "quotepro"},
                                                 {"name": "billing", "schedules": ["daily"]}]})
    got = checklist(healthy, settings)
    assert "billing daily: 0 of 31 days; MISSING 2025-12-01..2025-12-31" in \
        got.item("automated-backups").evidence
    assert "billing: NO restore test in the period" in got.item("restore-tests").evidence
    assert got.item("rpo").status == FAIL


def test_settings_name_the_key_that_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"databases\[0\]\.schedules"):
        Settings.from_dict({"databases": [{"name": "q", "schedules": ["hourly"]}]})
    with pytest.raises(ConfigError, match="rpo_hours must be a positive number"):
        Settings.from_dict({"rpo_hours": "24"})
    with pytest.raises(ConfigError, match="report.pitr names 'billing'"):
        Settings.from_dict({"databases": [{"name": "q"}],
                            "report": {"pitr": {"billing": {"rds_instance": "b"}}}})
    with pytest.raises(ConfigError, match="must name an RDS instance"):
        Settings.from_dict({"databases": [{"name": "q"}],
                            "report": {"pitr": {"q": {"supabase_project": "abc"}}}})


def test_a_deployment_config_file_is_read_as_settings() -> None:
    settings = Settings.from_dict({
        "backstop:databases": [{"name": "q", "secret": "s", "schedules": ["daily"]}],
        "backstop:recipients": ["-----BEGIN PGP PUBLIC KEY BLOCK-----"],
        "backstop:retention_days": {"daily": 10},
        "backstop:replication": {"destination_bucket_arn": "arn:aws:s3:::replica-bucket",
                                 "destination_kms_key_arn": "arn:aws:kms:..."}})
    assert settings.databases[0].schedules == ("daily",)
    assert settings.retention("daily") == 10 and settings.retention("weekly") == 30
    assert settings.retention("pre-migration") is None
    assert settings.replication_bucket == "replica-bucket"


def test_a_month_is_a_calendar_month_that_has_begun() -> None:
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    period = Period.month("2026-01", now=now)
    assert period.until == now and len(period.days()) == 14
    assert len(Period.month("2025-02", now=now).days()) == 28
    with pytest.raises(ConfigError, match="not YYYY-MM"):
        Period.month("January", now=now)
    with pytest.raises(ConfigError, match="has not begun"):
        Period.month("2026-02", now=now)
