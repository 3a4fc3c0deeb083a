"""One schedule backs up every database: the synthesized fleet workflow executed by moto, each
database through the real backup workflow and handlers against a real PostgreSQL; one
database's failure isolated from the others and named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.config import load_config
from tests.infra.conftest import raw_config, synth
from tests.support import moto_sfn

DATABASES = ("quotepro", "billing", "broken")


def _fleet_template(recipient_key: str) -> dict[str, Any]:
    # one at a time: the in-process handlers share this process's environment
    return synth(load_config(raw_config(recipient_key, backup_concurrency=1, databases=[
        {"name": name, "secret": f"backstop/{name}", "schedules": ["daily"]}
        for name in DATABASES])))


@pytest.fixture
def fleet(aws: Any, pg: Any, recipient_key: str) -> Iterator[moto_sfn.Deployment]:
    secrets = boto3.client("secretsmanager", region_name=moto_sfn.REGION)
    for name in DATABASES:
        connection = pg.database()
        secrets.create_secret(Name=f"backstop/{name}", SecretString=json.dumps({
            "host": connection.host, "port": connection.port, "username": connection.user,
            "password": connection.password, "sslmode": "disable",
            # the broken one names a database that does not exist
            "dbname": connection.dbname if name != "broken" else "no_such_database"}))
    yield moto_sfn.deploy(_fleet_template(recipient_key))


def _messages() -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    backend = sns_backends[DEFAULT_ACCOUNT_ID][moto_sfn.REGION]
    return [n[1] for topic in backend.topics.values() for n in topic.sent_notifications]


def _done(deployment: moto_sfn.Deployment) -> list[str]:
    listing = boto3.client("s3", region_name=moto_sfn.REGION).list_objects_v2(
        Bucket=deployment.bucket, Prefix="backstop/daily/")
    return sorted(k["Key"].split("/")[2] for k in listing.get("Contents", [])
                  if k["Key"].endswith(".dump.zst.gpg"))


def test_one_schedule_backs_up_every_database_and_names_the_one_that_failed(
        fleet: moto_sfn.Deployment) -> None:
    execution = moto_sfn.run(fleet.machine("FleetBackup"), {"retention": "daily"}, timeout=300)

    # the others are backed up although one failed
    assert _done(fleet) == ["billing", "quotepro"]
    assert execution.status == "FAILED" and execution.error == "SomeBackupsFailed"
    assert execution.cause.startswith('Backups failed for ["broken"]; each was notified')
    # one notification, from the failed database's own workflow, with its cause
    (message,) = _messages()
    assert message.startswith("Backup of broken (daily) failed. SourceError: ")
    assert moto_sfn.metric_sum("Backstop", "BackupFailed", {"Database": "broken"}) == 1
    # each database ran as its own backup workflow execution
    sfn = boto3.client("stepfunctions", region_name=moto_sfn.REGION)
    runs = sfn.list_executions(stateMachineArn=fleet.state_machine_arn)["executions"]
    assert sorted(r["status"] for r in runs) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert "EachDatabase" in execution.path


def test_a_large_fleet_runs_as_a_distributed_map(aws: Any, pg: Any, recipient_key: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.fleet

    # the threshold is Step Functions' inline limit (40); three databases cross a lower one
    monkeypatch.setattr(infra.fleet, "INLINE_LIMIT", 2)
    secrets = boto3.client("secretsmanager", region_name=moto_sfn.REGION)
    for name in DATABASES:
        connection = pg.database(empty=True)
        secrets.create_secret(Name=f"backstop/{name}", SecretString=json.dumps({
            "host": connection.host, "port": connection.port, "username": connection.user,
            "password": connection.password, "dbname": connection.dbname,
            "sslmode": "disable"}))
    template = _fleet_template(recipient_key)
    (fleet_id,) = [lid for lid in template["Resources"] if lid.startswith("FleetBackupState")
                   and template["Resources"][lid]["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.dumps(template["Resources"][fleet_id]["Properties"]["DefinitionString"])
    assert '\\"Mode\\":\\"DISTRIBUTED\\"' in definition
    deployment = moto_sfn.deploy(template)

    execution = moto_sfn.run(deployment.machine("FleetBackup"), {"retention": "daily"},
                             timeout=300)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert _done(deployment) == sorted(DATABASES)
