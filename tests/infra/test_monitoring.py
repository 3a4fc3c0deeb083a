"""Alarms (thresholds, missing-data policy, actions), the alert topic and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import resources


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["Properties"].get("MetricName", lid): a["Properties"]
            | {"_id": lid} for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
            if a["Properties"].get("Namespace") == "Backstop"}


def _dimension(alarm: dict[str, Any]) -> list[dict[str, str]]:
    dims: list[dict[str, str]] = alarm["Dimensions"]
    return dims


def test_rpo_alarm_per_database_at_the_configured_hours(template: dict[str, Any]) -> None:
    rpo = _alarms(template)["RecoveryPointAgeHours"]
    assert rpo["Threshold"] == 28
    assert rpo["ComparisonOperator"] == "GreaterThanThreshold"
    assert rpo["TreatMissingData"] == "notBreaching"  # a stopped check: RpoCheck's alarm
    assert rpo["Statistic"] == "Maximum" and rpo["Period"] == 900
    assert _dimension(rpo) == [{"Name": "Database", "Value": "quotepro"}]


def test_a_backup_near_its_runners_limit_alarms_above_70_percent(
        template: dict[str, Any]) -> None:
    alarm = _alarms(template)["BackupRunnerUsagePercent"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Statistic"]) == (
        70, "GreaterThanThreshold", "Maximum")
    assert _dimension(alarm) == [{"Name": "Database", "Value": "quotepro"}]


def test_one_incident_one_notification(template: dict[str, Any]) -> None:
    # what the workflows notify themselves (with the cause) has no alarm repeating it: no
    # failed/collapsed backup alarm, no "backup execution failed", no function errors
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    metrics = {(a.get("Namespace"), a.get("MetricName")) for a in alarms}
    assert ("Backstop", "BackupFailed") not in metrics
    assert ("Backstop", "BackupCollapsed") not in metrics
    assert ("AWS/Lambda", "Errors") not in metrics
    failed = [a for a in alarms if a.get("MetricName") == "ExecutionsFailed"]
    assert len(failed) == 1  # the manual restore's, which nothing else reports
    # a stopped RPO check is one alarm, breaching on missing data
    healthy = _alarms(template)["RpoCheckHealthy"]
    assert (healthy["Threshold"], healthy["TreatMissingData"]) == (1, "breaching")
    assert "Dimensions" not in healthy


def test_every_alarm_notifies_the_encrypted_topic(template: dict[str, Any]) -> None:
    (topic_id, topic), = resources(template, "AWS::SNS::Topic").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlertsKey9E1197AF", "Arn"]}
    silent = []
    for lid, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        if "AlarmActions" in alarm["Properties"]:
            assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        else:
            silent.append(lid)
    # the checklist report's own message is the notification of a failed item
    assert [lid.rstrip("0123456789ABCDEF") for lid in silent] == ["ReportReportItemFailed"]
    (subscription,) = resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    key_policy = template["Resources"]["AlertsKey9E1197AF"]["Properties"]["KeyPolicy"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
               for s in key_policy["Statement"])


def test_rpo_check_runs_every_15_minutes(template: dict[str, Any]) -> None:
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    (rpo,) = [r for r in rules if r.get("ScheduleExpression") == "rate(15 minutes)"]
    assert rpo["Targets"][0]["Arn"] == {"Fn::GetAtt": ["FunctionsRpoCheck1B17D5F0", "Arn"]}


def test_dashboard_covers_the_system(template: dict[str, Any]) -> None:
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("RecoveryPointAgeHours", "BackupSizeBytes", "BackupDurationSeconds",
                   "ExecutionsFailed", "Errors"):
        assert metric in body
