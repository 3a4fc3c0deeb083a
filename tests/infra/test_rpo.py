"""The RPO check: what counts (the newest good full backup, by its snapshot time), what it
costs (one index read per database, whatever the number of manifests), and a simulated month
of schedules against the synthesized alarm: it pages on the missed night, within 15 minutes of
the RPO passing, and never otherwise."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from backstop import index
from backstop.manifest import DONE, FAILED, Manifest, Scope, object_key
from backstop.signing import Policy
from backstop.store import LocalStore, ObjectStore, open_store
from infra.config import load_config
from infra.config_values import ConfigurationError
from tests.infra.conftest import raw_config, resources
from tests.support.alarms import Alarm
from tests.support.moto_sfn import emf_metrics

DB = "quotepro"
START = datetime(2026, 3, 1, tzinfo=UTC)


def manifest(snapshot: datetime, *, finished: datetime | None = None, status: str = DONE,
             scope: Scope | None = None, database: str = DB, size: int = 1000,
             retention: str = "daily", verified: bool | None = None) -> Manifest:
    backup_id = f"{snapshot:%Y%m%dT%H%M%S}Z-{random.getrandbits(24):06x}"
    return Manifest(
        id=backup_id, database=database, retention=retention, reason="test",
        scope=scope or Scope(), status=status, started_at=snapshot - timedelta(seconds=20),
        finished_at=finished or snapshot + timedelta(minutes=5), size=size, sha256="0" * 64,
        key=object_key(retention, database, snapshot, backup_id),
        snapshot={"id": "x", "taken_at": snapshot.isoformat()},
        dump={"plain_size": size * 3}, source={"server_version": "18.1"},
        encryption={"recipients": ["0" * 40]},
        verification=None if verified is None else {"ok": verified,
                                                    "verified_at": snapshot.isoformat()})


def signed(m: Manifest) -> bytes:
    """The manifest as Backstop writes it: signed with the key the handlers are given."""
    return json.dumps(Policy.from_env().seal(m.to_dict())).encode()


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
          capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """The RPO handler over a local store; returns (result, {metric: value}) per call."""
    from handlers import _runtime, rpo

    for key, value in {"BACKUP_LOCATION": str(tmp_path), "DATABASES": DB, "RPO_HOURS": "28",
                       "POWERTOOLS_METRICS_NAMESPACE": "Backstop",
                       "POWERTOOLS_SERVICE_NAME": "backstop"}.items():
        monkeypatch.setenv(key, value)
    _runtime.reset()

    def run(now: datetime) -> tuple[dict[str, Any], dict[str, float]]:
        capsys.readouterr()
        result = rpo.check(now)
        metrics: dict[str, float] = {}
        for record in emf_metrics(capsys.readouterr().out):
            for name in ("RecoveryPointAgeHours", "VerificationAgeHours", "RpoCheckHealthy"):
                if name in record:
                    value = record[name]
                    metrics[name] = value[0] if isinstance(value, list) else value
        return result, metrics

    run.store = LocalStore(tmp_path)  # type: ignore[attr-defined]
    yield run
    _runtime.reset()


# --------------------------------------------------------------------------- what counts
def test_age_is_measured_from_the_newest_good_full_backups_snapshot(check: Any) -> None:
    store: ObjectStore = check.store
    now = START + timedelta(days=3)
    full = manifest(now - timedelta(hours=20), finished=now - timedelta(hours=18))
    for m in (full,
              manifest(now - timedelta(hours=2), scope=Scope(mode="schema-only")),
              manifest(now - timedelta(hours=1), scope=Scope(tables=("quotes",))),
              manifest(now - timedelta(minutes=30), status=FAILED, size=0),
              manifest(now - timedelta(minutes=10), size=0)):  # an empty "DONE"
        index.record_backup(store, m, runner="lambda")

    result, metrics = check(now)

    # from the snapshot (20 h), not the finish (18 h); newer partial backups do not count
    assert metrics["RecoveryPointAgeHours"] == pytest.approx(20, abs=0.01)
    assert result["databases"][DB]["backup_id"] == full.id
    assert metrics["RpoCheckHealthy"] == 1


def test_a_backup_a_restore_test_proved_wrong_does_not_count(check: Any) -> None:
    store: ObjectStore = check.store
    now = START + timedelta(days=3)
    older = manifest(now - timedelta(hours=26))
    newer = manifest(now - timedelta(hours=2))
    for m in (older, newer):
        index.record_backup(store, m)
    for m, ok, hours_ago in ((older, True, 25), (newer, False, 1)):
        tested = dataclasses.replace(m, verification={
            "ok": ok, "restore_seconds": 55, "verify_seconds": 5,
            "verified_at": (now - timedelta(hours=hours_ago)).isoformat()})
        index.record_verification(store, tested, runner="lambda")

    result, metrics = check(now)

    assert metrics["RecoveryPointAgeHours"] == pytest.approx(26, abs=0.01)
    assert metrics["VerificationAgeHours"] == pytest.approx(26, abs=0.01)
    assert result["databases"][DB]["verified_backup_id"] == older.id


def test_a_configured_scope_counts_as_full_for_its_database(check: Any,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    store: ObjectStore = check.store
    now = START + timedelta(days=3)
    declared = Scope(exclude_tables=("audit_log",))
    index.record_backup(store, manifest(now - timedelta(hours=30)))
    index.record_backup(store, manifest(now - timedelta(hours=3), scope=declared))
    assert check(now)[1]["RecoveryPointAgeHours"] == pytest.approx(30, abs=0.01)

    monkeypatch.setenv("DATABASE_SCOPES", json.dumps(
        {DB: {"mode": "full", "tables": [], "exclude_tables": ["audit_log"]}}))
    assert check(now)[1]["RecoveryPointAgeHours"] == pytest.approx(3, abs=0.01)


def test_a_new_database_counts_from_when_it_was_first_watched(check: Any) -> None:
    first, metrics = check(START)
    assert metrics["RecoveryPointAgeHours"] == 0 and first["databases"][DB]["backup_id"] is None
    _, later = check(START + timedelta(hours=29))
    assert later["RecoveryPointAgeHours"] == pytest.approx(29)


def test_an_unreadable_index_is_the_check_alarms_one_notification(check: Any) -> None:
    store: LocalStore = check.store
    (store.root / "index").mkdir(parents=True, exist_ok=True)
    (store.root / "index" / f"{DB}.json").write_text("{not json")

    result, metrics = check(START)

    assert metrics == {"RpoCheckHealthy": 0}  # no age: the per-database alarm stays quiet
    assert result["unassessed"] == [DB]


# --------------------------------------------------------------------------- cost
def test_the_check_reads_one_object_per_database_however_many_manifests(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from moto import mock_aws

    from handlers import _runtime, rpo

    databases = ("quotepro", "billing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="backups")
        for key, value in {"BACKUP_LOCATION": "s3://backups/backstop",
                           "DATABASES": ",".join(databases), "RPO_HOURS": "28",
                           "POWERTOOLS_METRICS_NAMESPACE": "Backstop"}.items():
            monkeypatch.setenv(key, value)
        _runtime.reset()
        # Given two thousand manifests (years of pre-migration and manual backups)
        for i in range(2000):
            m = manifest(START - timedelta(hours=i), database=databases[i % 2],
                         retention=("daily", "manual", "pre-migration")[i % 3])
            s3.put_object(Bucket="backups", Key=f"backstop/{m.manifest_key}", Body=signed(m))
        calls: list[str] = []
        _runtime.client("s3").meta.events.register(
            "before-call.s3.*", lambda model, **_: calls.append(model.name))

        # the first check builds each missing index once from the manifests
        first = rpo.check(START)
        assert len(calls) > 2000
        assert first["databases"]["quotepro"]["age_hours"] == 0
        assert first["databases"]["billing"]["age_hours"] == pytest.approx(1)

        # from then on: one read per database, and nothing is listed
        calls.clear()
        second = rpo.check(START + timedelta(hours=1))
        assert calls == ["GetObject", "GetObject"]
        assert second["databases"]["quotepro"]["age_hours"] == pytest.approx(1)
        _runtime.reset()
    capsys.readouterr()


# --------------------------------------------------------------------------- the month
@dataclasses.dataclass
class Month:
    datapoints: list[tuple[datetime, float]]
    snapshots: list[datetime]


def _simulate(check: Any, *, seed: int, missed: int | None, task_hours: int) -> Month:
    """31 nights of daily 02:00 backups: each starts up to 5 minutes late (EventBridge, the
    Fargate task's start), takes its snapshot, and runs 2 minutes to the runner's limit;
    ``missed`` night has none. The RPO check runs every 15 minutes from a random phase."""
    rng = random.Random(seed)
    store: ObjectStore = check.store
    done: list[tuple[datetime, Manifest]] = []
    snapshots = []
    for night in range(31):
        if night == missed:
            continue
        snapshot = START + timedelta(days=night, hours=2,
                                     seconds=rng.uniform(0, 300) + 20)
        finished = snapshot + timedelta(seconds=rng.uniform(120, task_hours * 3600 - 60))
        done.append((finished, manifest(snapshot, finished=finished)))
        snapshots.append(snapshot)
    done.sort(key=lambda pair: pair[0])
    tick = START + timedelta(seconds=rng.uniform(0, 900))
    datapoints = []
    while tick < START + timedelta(days=31):
        while done and done[0][0] <= tick:
            index.record_backup(store, done.pop(0)[1], runner="container")
        _, metrics = check(tick)
        datapoints.append((tick, metrics["RecoveryPointAgeHours"]))
        tick += timedelta(minutes=15)
    return Month(datapoints, snapshots)


def _rpo_alarm(template: dict[str, Any]) -> Alarm:
    (props,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("MetricName") == "RecoveryPointAgeHours"]
    return Alarm.from_template(props)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_month_of_schedules_pages_on_the_missed_night_only(
        check: Any, template: dict[str, Any], config: Any, seed: int) -> None:
    alarm = _rpo_alarm(template)
    missed = random.Random(seed).randrange(3, 28)
    month = _simulate(check, seed=seed, missed=missed,
                      task_hours=config.backup_container.timeout_hours)

    (paged,) = alarm.notifications(month.datapoints)

    last_before = max(s for s in month.snapshots if s < START + timedelta(days=missed))
    rpo_passed = last_before + timedelta(hours=config.rpo_hours)
    assert timedelta(0) < paged - rpo_passed <= timedelta(minutes=15)


def test_a_healthy_month_never_pages(check: Any, template: dict[str, Any], config: Any) -> None:
    alarm = _rpo_alarm(template)
    month = _simulate(check, seed=7, missed=None,
                      task_hours=config.backup_container.timeout_hours)

    assert alarm.notifications(month.datapoints) == []
    # and not by luck: the worst age came within the margin of the threshold
    worst = max(value for _, value in month.datapoints)
    assert config.rpo_hours - 2 < worst < config.rpo_hours


def test_an_rpo_the_schedule_cannot_meet_is_refused(recipient_key: str) -> None:
    # 24 h is the daily interval itself: any backup a minute later than yesterday's would page
    with pytest.raises(ConfigurationError) as refused:
        load_config(raw_config(recipient_key, rpo_hours=24))
    message = str(refused.value)
    assert message.startswith("backstop:rpo_hours: 24 h cannot be met by quotepro's schedule")
    assert "raise rpo_hours to at least 28" in message
    with pytest.raises(ConfigurationError, match="at least 172"):
        db = {**raw_config(recipient_key)["databases"][0], "schedules": ["weekly"]}
        load_config(raw_config(recipient_key, databases=[db]))


def test_rpo_and_verified_age_alarms_per_database_check_every_15_minutes(
        template: dict[str, Any], config: Any) -> None:
    alarms = {a["Properties"]["MetricName"]: a["Properties"]
              for a in resources(template, "AWS::CloudWatch::Alarm").values()
              if "MetricName" in a["Properties"]}
    for name, threshold in (("RecoveryPointAgeHours", config.rpo_hours),
                            ("VerificationAgeHours",
                             config.restore.verification_max_age_days * 24)):
        alarm = alarms[name]
        assert (alarm["Period"], alarm["Statistic"], alarm["Threshold"]) == (
            900, "Maximum", threshold)
        assert alarm["TreatMissingData"] == "notBreaching"  # a stopped check: RpoCheck's
        assert alarm["Dimensions"] == [{"Name": "Database", "Value": "quotepro"}]
    healthy = alarms["RpoCheckHealthy"]
    assert (healthy["ComparisonOperator"], healthy["TreatMissingData"]) == (
        "LessThanThreshold", "breaching")


def test_a_store_with_no_index_is_rebuilt_from_its_manifests_once(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    old = manifest(START - timedelta(days=2), verified=True)
    new = manifest(START - timedelta(hours=5))
    for m in (old, new):
        store.put(m.manifest_key, signed(m))

    doc = index.ensure(store, DB, now=START)

    ages = index.ages(doc, now=START)
    assert (ages.newest_full, ages.newest_verified) == (new.id, old.id)
    assert datetime.fromisoformat(doc["watched_since"]) == old.started_at
    assert index.read(store, DB) == doc
