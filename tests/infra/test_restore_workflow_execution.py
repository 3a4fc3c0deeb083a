"""The synthesized restore-verification and manual-restore state machines, executed by moto with
the real handlers in-process. RDS is moto's, with every scratch instance's endpoint and master
secret mapped to the session's real PostgreSQL server, so the real restore and verification
run; S3, Secrets Manager, SSM, SNS and CloudWatch are moto's too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backstop import sample, scratch
from backstop.backup import BackupRequest, run_backup
from backstop.catalog import choose
from backstop.connection import Connection
from backstop.signing import KmsKey, Policy
from backstop.store import ObjectStore, open_store
from tests.infra.conftest import RESTORE_TARGET_SECRET, SECRET_NAME
from tests.support import moto_sfn

NAMESPACE = "Backstop"
DB = "quotepro"
VERIFIER_SECRET = "backstop/verifier-key"
MAX_POLLS = 45  # restore.instance_wait_minutes (45) at one describe a minute
PLAN, RESTORE, SWEEPER = ("FunctionsRestorePlanEE948274", "FunctionsRestore15327441",
                          "FunctionsScratchSweeper1F87708C")


@dataclasses.dataclass
class Restores:
    deployment: moto_sfn.Deployment
    store: ObjectStore
    server: moto_sfn.ScratchServer
    source: Connection
    waited: list[float]
    secrets: tuple[str, ...]  # values that must never appear in a history

    @property
    def verification(self) -> str:
        return self.deployment.machine("RestoreVerification")

    @property
    def manual(self) -> str:
        return self.deployment.machine("ManualRestore")

    def backup(self, **request: Any) -> str:
        """A DONE backup of the source, made by the library straight into the stack's bucket."""
        manifest = run_backup(BackupRequest(DB, checks=sample.QUOTEPRO_CHECKS, **request),
                              connection=self.source, store=self.store,
                              recipient_keys=[self.recipient])
        return manifest.id

    recipient: str = ""


@pytest.fixture
def restores(aws: Any, template: dict[str, Any], pg: Any, gpg_keys: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Restores]:
    source = pg.database()
    secrets = boto3.client("secretsmanager", region_name=moto_sfn.REGION)
    secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps({
        "host": source.host, "port": source.port, "username": source.user,
        "password": source.password, "dbname": source.dbname, "sslmode": "disable"}))
    secrets.create_secret(Name=VERIFIER_SECRET, SecretString=gpg_keys.private)
    deployment = moto_sfn.deploy(template)
    waited = moto_sfn.install_fast_waits(monkeypatch)
    moto_sfn.install_fast_retries(monkeypatch)

    def create_database(name: str) -> None:
        # The one local server stands for every instance of the test (one at a time).
        with pg.server.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" OWNER backstop')

    def drop_database(name: str) -> None:
        with pg.server.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    server = moto_sfn.map_scratch_instances(monkeypatch, moto_sfn.ScratchServer(
        host=pg.server.socket_dir, port=pg.server.port, username="backstop",
        password=pg.password, create_database=create_database, drop_database=drop_database))
    # the manifests' signing key is the stack's KMS key, as in the cloud
    signing = Policy(KmsKey(deployment.refs["ManifestSigningKey"],
                            client=boto3.client("kms", region_name=moto_sfn.REGION)))
    store = open_store(f"s3://{deployment.bucket}/backstop", signing=signing,
                       s3_client=boto3.client("s3", region_name=moto_sfn.REGION))
    yield Restores(deployment, store, server, source, waited,
                   (pg.password, gpg_keys.private.splitlines()[2]), gpg_keys.public)


def _instances() -> list[dict[str, Any]]:
    rds = boto3.client("rds", region_name=moto_sfn.REGION)
    return list(rds.describe_db_instances()["DBInstances"])


def _messages() -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    backend = sns_backends[DEFAULT_ACCOUNT_ID][moto_sfn.REGION]
    return [n[1] for topic in backend.topics.values() for n in topic.sent_notifications]


def _no_secret_in(execution: moto_sfn.Execution, restores: Restores) -> None:
    history = json.dumps(execution.events, default=str)
    for secret in restores.secrets:
        assert secret not in history


def _scheduled(execution: moto_sfn.Execution, state: str) -> dict[str, Any]:
    """The parameters a task state was called with."""
    entered = [i for i, e in enumerate(execution.events)
               if e.get("stateEnteredEventDetails", {}).get("name") == state]
    for event in execution.events[entered[0]:]:
        if event["type"] == "TaskScheduled":
            parameters: dict[str, Any] = json.loads(
                event["taskScheduledEventDetails"]["parameters"])
            return parameters
    raise AssertionError(f"{state} scheduled no task")


# --------------------------------------------------------------------------- verification
def test_verification_restores_verifies_records_and_deletes_the_instance(
        restores: Restores, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a backup, and an instance that takes a few describes to become available
    backup_id = restores.backup()
    served = moto_sfn.script_rds_status(monkeypatch, ["creating", "backing-up", "available"])

    execution = moto_sfn.run(restores.verification, {"database": DB, "backup_id": "latest"})

    # Then the backup was restored on a scratch instance, verified, recorded, and the
    # instance deleted
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.path == [
        "Plan", "CreateScratch", "StartWaiting",
        "WaitForScratch", "DescribeScratch", "ScratchAvailable?", "CountPoll",
        "WaitForScratch", "DescribeScratch", "ScratchAvailable?", "CountPoll",
        "WaitForScratch", "DescribeScratch", "ScratchAvailable?", "ScratchReady",
        "ScratchRunInput", "RunWhere?", "RunRestore", "ReportedRunRestore?", "Verified?",
        "PublishResult", "DeleteScratch", "Summarize", "Done"]
    assert served == ["creating", "backing-up", "available"]
    assert restores.waited == [60, 60, 60]
    recorded = choose(restores.store, backup_id).verification
    assert recorded is not None and recorded["ok"] and recorded["tables_matched"] == 5
    assert execution.output["report"]["ok"] is True
    assert execution.output["summary"].startswith(f"Backup {backup_id} of {DB} restored into "
                                                  "scratch instance backstop-scratch-")
    # one instance, created as the issue asks, and gone
    (instance_id,) = restores.server.created
    assert restores.server.deleted == [instance_id] and _instances() == []
    created = _scheduled(execution, "CreateScratch")
    assert created["DbInstanceIdentifier"] == instance_id
    assert (created["Engine"], created["EngineVersion"]) == ("postgres", "18")
    assert created["ManageMasterUserPassword"] is True and "MasterUserPassword" not in created
    assert created["PubliclyAccessible"] is False and created["DeletionProtection"] is False
    assert created["AllocatedStorage"] == 20 and created["DbInstanceClass"] == "db.t4g.micro"
    tags = {t["Key"]: t["Value"] for t in created["Tags"]}
    assert tags[scratch.SCRATCH_TAG] == "true" and int(tags[scratch.KEEP_TAG]) >= 1
    assert _scheduled(execution, "DeleteScratch")["SkipFinalSnapshot"] is True
    # metrics for the alarms: a success and the measured restore time (RTO)
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreTestSucceeded", {"Database": DB}) == 1
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreTestFailed", {"Database": DB}) == 0
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreDurationMinutes", {"Database": DB}) > 0
    _no_secret_in(execution, restores)
    assert [name for name, _ in aws.calls] == [PLAN,
                                               RESTORE]


def test_tampered_data_fails_verification_publishes_the_failure_and_deletes_the_instance(
        restores: Restores) -> None:
    # Given a backup whose manifest no longer matches what was dumped (one row more expected)
    backup_id = restores.backup()
    manifest = choose(restores.store, backup_id)
    data = json.loads(restores.store.get(manifest.manifest_key))
    table = next(t for t in data["tables"] if t["name"] == "quotes")
    table["rows"] += 1
    data.pop("signature")  # a wrong manifest, signed: only restoring can tell
    restores.store.put(manifest.manifest_key,
                       json.dumps(restores.store.signing.seal(data)).encode())

    execution = moto_sfn.run(restores.verification, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "VerificationFailed"
    assert "public.quotes" in execution.cause and "differs from its manifest" in execution.cause
    assert execution.path[-6:] == ["ExplainMismatch", "PublishFailureMetric", "NotifyFailure",
                                   "ScratchCreated?", "DeleteAfterFailure", "RestoreTestFailed"]
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreTestFailed", {"Database": DB}) == 1
    (message,) = _messages()
    assert message.startswith(f"Restore test of {DB} failed. VerificationFailed: ")
    assert restores.server.created == restores.server.deleted and _instances() == []
    recorded = choose(restores.store, backup_id).verification
    assert recorded is not None and recorded["ok"] is False


def test_restore_error_fails_with_a_readable_cause_and_deletes_the_instance(
        restores: Restores) -> None:
    # Given a scratch instance the restore cannot reach
    restores.backup()
    restores.server.port = 1

    execution = moto_sfn.run(restores.verification, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "SourceError"
    assert execution.cause.startswith("cannot connect to database postgres on ")
    assert "\n" not in execution.cause
    assert "RunRestore" in execution.path and execution.path[-1] == "RestoreTestFailed"
    assert "DeleteAfterFailure" in execution.path
    assert restores.server.created == restores.server.deleted and _instances() == []
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreTestFailed", {"Database": DB}) == 1
    _no_secret_in(execution, restores)


def test_instance_stuck_creating_past_the_ceiling_is_deleted(
        restores: Restores, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    restores.backup()
    moto_sfn.script_rds_status(monkeypatch, ["creating"])

    execution = moto_sfn.run(restores.verification, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "ScratchInstanceNotReady"
    assert "is still creating after 45 minutes" in execution.cause
    assert execution.path.count("DescribeScratch") == MAX_POLLS + 1
    assert len(restores.waited) == MAX_POLLS + 1
    assert execution.path[-3:] == ["ScratchCreated?", "DeleteAfterFailure", "RestoreTestFailed"]
    assert restores.server.created == restores.server.deleted and _instances() == []
    assert RESTORE not in [name for name, _ in aws.calls]


def test_damaged_backup_fails_before_any_instance_is_created(restores: Restores) -> None:
    # Given a backup object that was replaced after its manifest was written
    backup_id = restores.backup()
    manifest = choose(restores.store, backup_id)
    restores.store.put(manifest.key, b"not the backup")

    execution = moto_sfn.run(restores.verification, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "IntegrityError"
    assert execution.cause.startswith(f"backup {backup_id}: object ")
    assert restores.server.created == [] and "CreateScratch" not in execution.path
    assert moto_sfn.metric_sum(NAMESPACE, "RestoreTestFailed", {"Database": DB}) == 1


def test_unknown_database_is_rejected_in_one_sentence(restores: Restores) -> None:
    execution = moto_sfn.run(restores.verification, {"database": "billing"})

    assert (execution.status, execution.error) == ("FAILED", "ConfigError")
    assert execution.cause == ("database 'billing' is not configured for this stack; use one "
                               "of quotepro")
    assert execution.path[-1] == "InputRejected"


# --------------------------------------------------------------------------- container runner
def _shrink_restore_function_tmp() -> None:
    """Deploy the plan step as if the restore function's /tmp were 1 KB: every dump is then
    too large for it (runner_for says 'container')."""
    lam = boto3.client("lambda", region_name=moto_sfn.REGION)
    variables = lam.get_function_configuration(FunctionName=PLAN)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=PLAN, Environment={
        "Variables": {**variables, "RESTORE_TMP_BYTES": "1024"}})


def test_a_backup_too_large_for_the_function_restores_in_the_fargate_task(
        restores: Restores, aws: Any) -> None:
    # Given a restore function whose /tmp cannot hold this backup's dump
    backup_id = restores.backup()
    _shrink_restore_function_tmp()

    execution = moto_sfn.run(restores.verification, {"database": DB})

    # Then the same restore runs as the ECS task (.sync), reports with its task token, and
    # everything after it is the same as for the function
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "RunRestoreTask" in execution.path and "RunRestore" not in execution.path
    assert execution.path[-4:] == ["PublishResult", "DeleteScratch", "Summarize", "Done"]
    assert execution.output["runner"] == "container"
    (container,) = [env for name, env in aws.calls if name == "container:Restore"]
    assert container["BACKSTOP_TASK_TOKEN"]
    assert json.loads(container["BACKSTOP_TASK_INPUT"])["plan"]["backup"]["id"] == backup_id
    assert choose(restores.store, backup_id).verification["ok"] is True  # type: ignore[index]
    started = _scheduled(execution, "RunRestoreTask")
    assert started["LaunchType"] == "FARGATE"
    network = started["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network.get("AssignPublicIp", "DISABLED") == "DISABLED"
    assert len(network["Subnets"]) == 2 and len(network["SecurityGroups"]) == 1
    assert _instances() == []
    _no_secret_in(execution, restores)


def test_a_task_that_stops_without_reporting_fails_and_the_instance_is_deleted(
        restores: Restores, aws: Any) -> None:
    restores.backup()
    _shrink_restore_function_tmp()
    aws.container_overrides["Restore"] = lambda: 137  # killed (out of memory)

    execution = moto_sfn.run(restores.verification, {"database": DB})

    assert execution.status == "FAILED" and execution.error == "RestoreNotReported"
    assert "NoReport" in execution.path and "DeleteAfterFailure" in execution.path
    assert _instances() == []


# --------------------------------------------------------------------------- manual restores
@pytest.fixture
def target(restores: Restores, pg: Any) -> Connection:
    """An existing database a manual restore may replace: a copy of the sample that has lost
    its pricing items since the backup (the runbook's accidental deletion)."""
    target = pg.database()
    pg.sql(target, "TRUNCATE pricing_items CASCADE")  # and, by their foreign key, line items
    boto3.client("secretsmanager", region_name=moto_sfn.REGION).create_secret(
        Name=RESTORE_TARGET_SECRET, SecretString=json.dumps({
            "host": target.host, "port": target.port, "username": target.user,
            "password": target.password, "dbname": target.dbname, "sslmode": "disable"}))
    return target


def _count(pg: Any, connection: Connection, table: str) -> int:
    ((rows,),) = pg.sql(connection, f"SELECT count(*) FROM {table}")
    return int(str(rows))


def test_restore_into_a_database_without_confirm_is_refused_before_anything_runs(
        restores: Restores, target: Connection, aws: Any, pg: Any) -> None:
    restores.backup()

    execution = moto_sfn.run(restores.manual, {
        "database": DB, "backup_id": "latest", "target": {"secret": RESTORE_TARGET_SECRET}})

    assert (execution.status, execution.error) == ("FAILED", "ConfigError")
    assert execution.cause.startswith("restoring into an existing database replaces what it "
                                      'holds: add "confirm"')
    assert execution.path[-1] == "InputRejected"
    assert [name for name, _ in aws.calls] == [PLAN]
    assert restores.server.created == [] and _instances() == []  # no RDS call
    assert _count(pg, target, "pricing_items") == 0  # no database call: nothing changed
    assert not [k for k in restores.store.keys("pre-restore/")]


def test_confirm_must_name_the_target_database(restores: Restores, target: Connection,
                                               aws: Any) -> None:
    restores.backup()

    execution = moto_sfn.run(restores.manual, {
        "database": DB, "target": {"secret": RESTORE_TARGET_SECRET}, "confirm": "production"})

    assert execution.error == "ConfigError"
    assert execution.cause == (f"confirm 'production' does not match the target database name "
                               f"{target.dbname!r}; nothing was restored")
    assert [name for name, _ in aws.calls] == [PLAN]


def test_confirmed_restore_into_a_database_takes_a_pre_restore_backup_first(
        restores: Restores, target: Connection, pg: Any) -> None:
    backup_id = restores.backup()
    incident = datetime.now(UTC) + timedelta(hours=2)

    execution = moto_sfn.run(restores.manual, {
        "database": DB, "backup_id": backup_id, "mode": "full",
        "target": {"secret": RESTORE_TARGET_SECRET}, "confirm": target.dbname,
        "incident_at": incident.isoformat()})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    output = execution.output
    assert output["target"] == {"database": target.dbname, "secret": RESTORE_TARGET_SECRET}
    assert output["report"]["ok"] is True and output["backup"]["id"] == backup_id
    # the pre-restore backup holds the target as it was (no pricing items), taken first
    pre = choose(restores.store, output["pre_restore_backup"])
    assert pre.retention == "pre-restore" and pre.status == "DONE"
    assert {t.name: t.rows for t in pre.tables}["pricing_items"] == 0
    assert pre.finished_at.isoformat() < output["report"]["verified_at"]
    # and the target is the backup again
    backup = choose(restores.store, backup_id)
    assert _count(pg, target, "pricing_items") == {t.name: t.rows
                                                   for t in backup.tables}["pricing_items"] > 0
    assert 1.9 < output["data_loss"]["hours"] < 2.1
    assert restores.server.created == []  # no scratch instance for an existing target
    # the target is no configured database: its pre-restore backup is sized by the backup's
    assert _planned(execution)["runner_reason"].endswith(
        "(pre-restore backup sized from quotepro's backups: the target is not a configured "
        "database)")
    _no_secret_in(execution, restores)


class TestATargetThatIsAConfiguredDatabase:
    """Restoring quotepro's backup over the database of another configured one, billing."""

    @pytest.fixture
    def template(self, recipient_key: str, synth_with: Any) -> dict[str, Any]:
        from tests.infra.conftest import raw_config

        quotepro = raw_config(recipient_key)["databases"][0]
        return dict(synth_with(databases=[quotepro, {
            "name": "billing", "secret": RESTORE_TARGET_SECRET, "schedules": ["daily"]}]))

    def test_its_pre_restore_backup_is_sized_from_its_own_backups(
            self, restores: Restores, target: Connection) -> None:
        from backstop import index

        backup_id = restores.backup()
        # billing's own history: 2 GB dumps at 100 MB/s in the function (quotepro has none)
        index.update(restores.store, "billing", lambda doc: doc["backups"].insert(0, {
            "id": "20260101T020000Z-bbbbbb", "status": "DONE", "size": 10**9,
            "plain_size": 2 * 10**9, "seconds": 20, "runner": "lambda", "scope": {},
            "started_at": "2026-01-01T02:00:00+00:00"}))

        execution = moto_sfn.run(restores.manual, {
            "database": DB, "backup_id": backup_id, "target": {"secret": RESTORE_TARGET_SECRET},
            "confirm": target.dbname})

        assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
        reason = _planned(execution)["runner_reason"]
        assert "after a pre-restore backup of 2.00 GB at 100.0 MB/s" in reason
        assert reason.endswith("(pre-restore backup sized from billing's own backups)")


def test_restore_into_scratch_keeps_the_instance_until_the_sweeper_deletes_it(
        restores: Restores, pg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    restores.backup()

    execution = moto_sfn.run(restores.manual, {
        "database": DB, "backup_id": "latest", "mode": "tables", "tables": ["companies"],
        "target": "scratch", "keep_hours": 6})

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    instance = execution.output["instance"]
    assert instance["database"] == "restored" and instance["host"] == pg.server.socket_dir
    assert instance["master_secret_arn"].startswith("arn:aws:secretsmanager:")
    assert execution.output["report"]["ok"] is True
    assert execution.output["request"] == {"mode": "tables", "tables": ["companies"],
                                           "confirm": None}
    # kept: the instance is still there, tagged with its lifetime
    (alive,) = _instances()
    assert alive["DBInstanceIdentifier"] == instance["id"]
    tags = {t["Key"]: t["Value"] for t in alive["TagList"]}
    keep = int(tags[scratch.KEEP_TAG])
    assert keep > 6
    # the hourly sweep before that time keeps it; the first one after it deletes it
    assert _sweep(datetime.now(UTC) + timedelta(hours=keep - 1))["deleted"] == []
    result = _sweep(datetime.now(UTC) + timedelta(hours=keep + 1))
    assert result["deleted"] == [instance["id"]] and _instances() == []
    assert restores.server.deleted == [instance["id"]]


def _sweep(at: datetime) -> dict[str, Any]:
    """What the hourly schedule does: invoke the sweeper with a scheduled event."""
    response = boto3.client("lambda", region_name=moto_sfn.REGION).invoke(
        FunctionName=SWEEPER, Payload=json.dumps(
            {"source": "aws.events", "detail-type": "Scheduled Event",
             "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "detail": {}}))
    assert "FunctionError" not in response
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def _planned(execution: moto_sfn.Execution) -> dict[str, Any]:
    plan: dict[str, Any] = next(  # Plan is the first function the workflow calls
        json.loads(e["lambdaFunctionSucceededEventDetails"]["output"]) for e in execution.events
        if e["type"] == "LambdaFunctionSucceeded")
    return plan


def test_the_next_verification_plans_with_the_measured_restore_throughput(
        restores: Restores) -> None:
    # Given a first verification, which measures the whole restore (every phase)
    restores.backup()
    first = moto_sfn.run(restores.verification, {"database": DB})
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert "at 20.0 MB/s" in _planned(first)["runner_reason"]  # the configured assumption

    # When a newer backup, never verified, is verified next
    restores.backup()
    second = moto_sfn.run(restores.verification, {"database": DB})

    # Then its runner was chosen from the database's measured history, not the assumption
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    reason = _planned(second)["runner_reason"]
    assert "at 20.0 MB/s" not in reason and "MB/s fits the function" in reason
    from backstop import index

    (measured, _) = index.read(restores.store, DB)["restores"][:2]  # type: ignore[index]
    assert measured["ok"] is True and measured["runner"] == "lambda" and measured["seconds"] > 0
