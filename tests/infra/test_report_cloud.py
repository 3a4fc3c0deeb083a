"""The checklist report in the cloud: its template, and the synthesized workflow executed
under moto over a bucket configured exactly as the template configures it (lifecycle,
versioning, replication), holding generated backups. The PITR watch: test_report_pitr_watch."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from backstop import report
from backstop.manifest import Manifest
from backstop.report_model import FAIL, PASS, Period, Settings, previous_month
from backstop.signing import KmsKey, Policy
from backstop.store import ObjectStore, open_store
from infra.config import BackstopConfig
from infra.report import report_settings
from tests.conftest import KeyPair, Postgres
from tests.infra import iam_calls, iam_model
from tests.infra.conftest import REPLICA, alarm_props, emf_values, function_props, resources
from tests.integration import year
from tests.support import moto_sfn


@pytest.fixture(scope="module")
def base(pg: Postgres, gpg_keys: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return year.template(pg, gpg_keys, tmp_path_factory.mktemp("template"))


# --------------------------------------------------------------------------- template
def test_the_report_runs_monthly_a_failed_item_alarms_and_a_timeout_notifies(
        report_template: dict[str, Any]) -> None:
    rules = [r["Properties"] for r in resources(report_template, "AWS::Events::Rule").values()]
    (monthly,) = [r for r in rules if r.get("ScheduleExpression") == "cron(0 6 1 * ? *)"]
    assert json.loads(monthly["Targets"][0]["Input"]) == {}
    item = alarm_props(report_template, "ReportItemsFailed")
    assert (item["Threshold"], item["ComparisonOperator"], item["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching")
    assert "AlarmActions" not in item  # the report's own message is the notification
    (timed_out,) = [a["Properties"] for a in resources(report_template,
                                                        "AWS::CloudWatch::Alarm").values()
                    if "Metrics" in a["Properties"]]
    assert "ReportStateMachine" in json.dumps(timed_out["Metrics"])


def test_the_report_role_reads_the_bucket_configuration_and_writes_only_reports(
        report_template: dict[str, Any]) -> None:
    lid, _ = function_props(report_template, "handlers.report.handler")
    role = report_template["Resources"][lid]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [s for p in resources(report_template, "AWS::IAM::Policy").values()
                  if {"Ref": role} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                               else s["Action"])}
    assert {"s3:GetLifecycleConfiguration", "s3:GetBucketVersioning",
            "s3:GetReplicationConfiguration", "s3:GetBucketObjectLockConfiguration",
            "s3:GetObjectRetention", "cloudwatch:DescribeAlarmHistory",
            "rds:DescribeDBInstances"} <= actions
    writes = [s for s in statements if s["Action"] == "s3:PutObject"]
    text = json.dumps(writes)
    assert "/backstop/reports/*" in text and "/backstop/acknowledgements/*" in text
    assert "/backstop/*" not in text


def test_with_pitr_sources_every_call_the_roles_may_make_is_allowed(
        report_template: dict[str, Any]) -> None:
    for prefix in ("FunctionsReportRole", "FunctionsPitrWatchRole"):
        role = iam_calls.ROLES[prefix]
        statements = iam_model.role_statements(report_template,
                                               iam_model.role_of(report_template, prefix))
        calls = set(role.granted) | {"rds:DescribeDBInstances"}
        needs = {need for call in calls for action in [iam_model.iam_action(call)]
                 for need in {action} | iam_model.dependent_actions(action)}
        if prefix == "FunctionsReportRole":  # old versions of expired manifests; lock dates
            needs |= {"s3:GetObjectVersion", "s3:GetObjectRetention", "kms:Decrypt",
                      "kms:GenerateDataKey"}
        assert [n for n in sorted(needs) if not iam_model.allows(statements, n)] == [], prefix


def test_the_settings_travel_in_the_definition_not_the_input(
        report_template: dict[str, Any], report_config: BackstopConfig) -> None:
    (machine,) = [m for lid, m in
                  resources(report_template, "AWS::StepFunctions::StateMachine").items()
                  if lid.startswith("ReportStateMachine")]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    definition = json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts))
    payload = definition["States"]["MakeReport"]["Parameters"]["Payload"]
    assert payload["request.$"] == "$"
    # CDK leaves out null values (manual retention: kept; no Object Lock): the same settings
    assert Settings.from_dict(payload["settings"]) == Settings.from_dict(
        report_settings(report_config))
    assert Settings.from_dict(payload["settings"]).replication_bucket == REPLICA


# --------------------------------------------------------------------------- executed
def _configure_bucket(template: dict[str, Any], bucket: str) -> None:
    """Give the moto bucket the versioning, lifecycle and replication the template gives."""
    props = template["Resources"]["BackupBucket"]["Properties"]
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props[
        "VersioningConfiguration"])
    rules = []
    for rule in props["LifecycleConfiguration"]["Rules"]:
        api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"],
                               "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": rule["ExpirationInDays"]}
        elif rule.get("ExpiredObjectDeleteMarker"):
            api["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        for key in ("NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
            if key in rule:
                api[key] = rule[key]
        rules.append(api)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": rules})
    replication = props["ReplicationConfiguration"]
    s3.create_bucket(Bucket=REPLICA)
    s3.put_bucket_versioning(Bucket=REPLICA, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{moto_sfn.ACCOUNT}:role/replication",
        "Rules": [{"ID": r["Id"], "Priority": r["Priority"], "Status": r["Status"],
                   "Filter": r.get("Filter", {"Prefix": ""}),
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": r["Destination"]["Bucket"]}}
                  for r in replication["Rules"]]})


def _expire(bucket: str, today: date) -> None:
    """What the lifecycle rules do by now: daily backups older than 7 days and weekly ones
    older than 30 are deleted (a delete marker: versioning keeps the old version)."""
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    for retention, days in (("daily", 7), ("weekly", 30)):
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"backstop/{retention}/"):
            for item in page.get("Contents", []):
                started = date(*map(int, item["Key"].split("/")[3:6]))
                if (today - started).days > days:
                    s3.delete_object(Bucket=bucket, Key=item["Key"])


def _replicate(bucket: str) -> None:
    """What S3 replication does: every object copied to the replica bucket."""
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.copy_object(Bucket=REPLICA, Key=item["Key"],
                           CopySource={"Bucket": bucket, "Key": item["Key"]})


@pytest.fixture
def deployed(aws: moto_sfn.LambdaCalls, report_template: dict[str, Any], base: Manifest,
             monkeypatch: pytest.MonkeyPatch) -> moto_sfn.Deployment:
    """The stack in moto, its bucket configured as deployed, six weeks of backups up to
    yesterday (replicated), the RDS source up to date, and alarms from the template."""
    moto_sfn.install_alarm_history(monkeypatch)
    moto_sfn.script_latest_restorable(monkeypatch, {})
    deployment = moto_sfn.deploy(report_template)
    _configure_bucket(report_template, deployment.bucket)
    today = datetime.now(UTC).date()
    first = date.fromisoformat(previous_month(datetime.now(UTC)) + "-01")
    store = _store(deployment)
    year.generate(store, base, start=first - timedelta(days=14), end=today)
    _replicate(deployment.bucket)
    _expire(deployment.bucket, today)
    boto3.client("rds", region_name=moto_sfn.REGION).create_db_instance(
        DBInstanceIdentifier="quotepro-prod", DBInstanceClass="db.t4g.micro",
        Engine="postgres", BackupRetentionPeriod=7, MasterUsername="postgres",
        MasterUserPassword="not-used-here", AllocatedStorage=20)
    cloudwatch = boto3.client("cloudwatch", region_name=moto_sfn.REGION)
    for lid, alarm in resources(report_template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if props.get("Namespace") == "Backstop" and props["MetricName"].startswith(
                ("Report", "Pitr")):
            cloudwatch.put_metric_alarm(**{
                "AlarmName": lid, **{k: v for k, v in moto_sfn.resolve(
                    props, deployment.refs, {}).items()
                    if k in ("AlarmDescription", "AlarmActions", "MetricName", "Namespace",
                             "Statistic", "Period", "EvaluationPeriods", "Threshold",
                             "ComparisonOperator", "TreatMissingData", "Dimensions")}})
    return deployment


def _notifications(topic_arn: str) -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    topic = sns_backends[moto_sfn.ACCOUNT][moto_sfn.REGION].topics[topic_arn]
    return [(subject or "", message) for _, message, subject, _, _ in topic.sent_notifications]


def _store(deployment: moto_sfn.Deployment) -> ObjectStore:
    """The deployed store, its manifests signed with the stack's KMS key, as in the cloud."""
    signing = Policy(KmsKey(deployment.refs["ManifestSigningKey"],
                            client=boto3.client("kms", region_name=moto_sfn.REGION)))
    return open_store(f"s3://{deployment.bucket}/backstop", signing=signing,
                      s3_client=boto3.client("s3", region_name=moto_sfn.REGION))


def _stored(bucket: str, key: str) -> bytes:
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_the_scheduled_report_runs_end_to_end(deployed: moto_sfn.Deployment,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = moto_sfn.run(deployed.machine("Report"), {}, timeout=180)  # as the schedule starts it
    assert run.status == "SUCCEEDED", run.cause
    month = previous_month(datetime.now(UTC))
    assert run.output["month"] == month and run.output["status"] == PASS, run.output
    assert run.path == ["MakeReport", "Report?", "Notify", "Done"]

    prefix = f"backstop/reports/{month}/backstop-checklist-{month}"
    got = json.loads(_stored(deployed.bucket, f"{prefix}.json"))
    statuses = {i["id"]: i["status"] for i in got["items"]}
    assert statuses == {"automated-backups": PASS, "manual-backup": PASS, "backup-sizes": PASS,
                        "restore-tests": PASS, "off-platform-copies": PASS, "retention": PASS,
                        "review-procedures": "DUE", "train-team": "DUE", "rpo": PASS,
                        "pitr": PASS}
    assert got["alarms"] == []
    # The month's first daily backup expired weeks ago; its old version is the evidence.
    (daily,) = [e for e in got["items"][0]["evidence"] if e.startswith("quotepro daily")]
    days = (date.fromisoformat(got["period"]["end"][:10]) - date.fromisoformat(f"{month}-01")
            ).days
    assert daily == f"quotepro daily: {days} of {days} days"
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    assert not s3.list_objects_v2(Bucket=deployed.bucket,
                                  Prefix=f"backstop/daily/quotepro/{month[:4]}/{month[5:]}/01/"
                                  ).get("Contents")
    assert _stored(deployed.bucket, f"{prefix}.html").startswith(b"<!DOCTYPE html>")

    ((subject, message),) = _notifications(deployed.topic_arn)
    assert subject == f"Backstop checklist {month}: PASS"
    assert (f"https://s3.console.aws.amazon.com/s3/object/{deployed.bucket}?region=us-east-1"
            f"&prefix={prefix}.html") in message
    assert "[PASS] Check backup retention is configured correctly" in message
    assert emf_values(capsys.readouterr().out, "ReportItemsFailed") == {None: 0}


def test_a_hand_edited_lifecycle_a_lost_replica_and_an_alarm_show_in_the_report(
        deployed: moto_sfn.Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3", region_name=moto_sfn.REGION)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=deployed.bucket)["Rules"]
    for rule in rules:
        if rule["ID"] == "expire-daily":
            rule["Expiration"] = {"Days": 3}  # as someone might in the console
    s3.put_bucket_lifecycle_configuration(Bucket=deployed.bucket,
                                          LifecycleConfiguration={"Rules": rules})
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    (lost,) = [k["Key"] for k in s3.list_objects_v2(
        Bucket=REPLICA, Prefix=f"backstop/daily/quotepro/{yesterday:%Y/%m/%d}/")["Contents"]
        if k["Key"].endswith(".dump.zst.gpg")]
    s3.delete_object(Bucket=REPLICA, Key=lost)
    cloudwatch = boto3.client("cloudwatch", region_name=moto_sfn.REGION)
    (lag_alarm,) = [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]
                    if a["MetricName"] == "PitrLagMinutes"]
    cloudwatch.set_alarm_state(AlarmName=lag_alarm, StateValue="ALARM", StateReason="test")

    month = f"{datetime.now(UTC):%Y-%m}"  # the alarm fired just now: this month
    run = moto_sfn.run(deployed.machine("Report"), {"month": month}, timeout=180)
    assert run.status == "SUCCEEDED", run.cause
    assert {"retention", "off-platform-copies"} <= set(run.output["failed"])
    got = json.loads(_stored(deployed.bucket,
                             f"backstop/reports/{month}/backstop-checklist-{month}.json"))
    items = {i["id"]: i for i in got["items"]}
    assert items["retention"]["status"] == FAIL
    assert ("backstop/daily/: expires after 3 days (rules expire-daily); the config says 7"
            in items["retention"]["evidence"])
    assert items["off-platform-copies"]["status"] == FAIL
    assert f"MISSING replica s3://{REPLICA}/{lost}" in " ".join(
        items["off-platform-copies"]["evidence"])
    (alarm,) = got["alarms"]
    assert alarm["name"] == lag_alarm and alarm["entered"] == 1
    assert "more than 5 min behind" in alarm["description"]

    ((subject, message),) = _notifications(deployed.topic_arn)
    assert subject == f"Backstop checklist {month}: {len(run.output['failed'])} item(s) FAIL"
    assert "[FAIL] Check backup retention is configured correctly" in message
    assert emf_values(capsys.readouterr().out, "ReportItemsFailed") == {
        None: len(run.output["failed"])}


def test_an_acknowledgement_from_the_console_is_in_the_next_report(
        deployed: moto_sfn.Deployment) -> None:
    run = moto_sfn.run(deployed.machine("Report"),
                       {"acknowledge": "train-team", "by": "dana", "note": "restore drill"})
    assert run.status == "SUCCEEDED", run.cause
    assert run.path == ["MakeReport", "Report?", "Acknowledged"]
    assert run.output["by"] == "dana" and _notifications(deployed.topic_arn) == []
    month = f"{datetime.now(UTC):%Y-%m}"
    assert moto_sfn.run(deployed.machine("Report"), {"month": month},
                        timeout=180).status == "SUCCEEDED"
    got = json.loads(_stored(deployed.bucket,
                             f"backstop/reports/{month}/backstop-checklist-{month}.json"))
    (item,) = [i for i in got["items"] if i["id"] == "train-team"]
    assert item["status"] == PASS and item["summary"].endswith("by dana")


@pytest.mark.parametrize(("given", "cause"), [
    ({"month": "2026-13"}, "month '2026-13' is not YYYY-MM, such as 2026-01"),
    ({"months": "2026-01"}, "the input may hold only month, acknowledge, by, note"),
    ({"acknowledge": "retention", "by": "dana"}, "'retention' is not an item about people"),
])
def test_bad_console_input_is_refused_in_one_sentence_without_a_notification(
        deployed: moto_sfn.Deployment, given: dict[str, str], cause: str) -> None:
    run = moto_sfn.run(deployed.machine("Report"), given)
    assert (run.status, run.error) == ("FAILED", "ConfigError")
    assert run.cause is not None and run.cause.startswith(cause) and "\n" not in run.cause
    assert _notifications(deployed.topic_arn) == []


def test_a_month_whose_manifests_are_gone_cannot_be_evidenced(
        deployed: moto_sfn.Deployment, report_config: BackstopConfig) -> None:
    now = datetime.now(UTC)
    long_ago = (now.replace(day=1) - timedelta(days=80)).strftime("%Y-%m")
    store = _store(deployed)
    got = report.build(store, Settings.from_dict(report_settings(report_config)),
                       Period.month(long_ago, now=now), now=now, sources=report.Sources())
    item = got.item("automated-backups")
    assert item.status == FAIL and "can no longer be evidenced" in item.summary
    assert any("NOT EVIDENCED" in line for line in item.evidence)
    assert "keep old versions longer" in item.evidence[-1]

