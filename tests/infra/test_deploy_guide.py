"""docs/deploy.md against the template: the first-deploy checklist names the stack's real
outputs (all of them), the alarm table names every alarm the stack creates, and no other; and
what the guides say of a new database's RPO alarm, of what no alarm repeats and of the VPC
endpoints is what the stack does."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.conftest import ROOT, resources

GUIDE = (ROOT / "docs" / "deploy.md").read_text()


def _section(title: str) -> str:
    start = GUIDE.index(f"## {title}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start:end if end > 0 else None]


def test_first_deploy_checklist_names_every_output_and_nothing_else(
        template: dict[str, Any]) -> None:
    checklist = _section("First deploy")
    named = set(re.findall(r"`([A-Z][A-Za-z]+(?:Arn|Name|Id))`", checklist))
    assert named == set(template["Outputs"]), named ^ set(template["Outputs"])
    # the secrets it asks for are the ones the stack reads
    assert "restore.private_key_secret" in checklist and "databases[].secret" in checklist


def test_alarm_table_names_every_alarm_the_stack_creates(
        report_template: dict[str, Any]) -> None:
    table = _section("Schedules, metrics and alarms")
    documented = re.findall(r"^\| `([A-Za-z<>]+)` \|", table, flags=re.MULTILINE)
    patterns = [re.compile("^(Monitoring|Report)" + name.replace("<db>", "quotepro")
                           + "[0-9A-F]{8}$") for name in documented]
    # with an RDS source under report.pitr: every alarm, the PITR watch's included
    alarms = list(resources(report_template, "AWS::CloudWatch::Alarm"))
    undocumented = [a for a in alarms if not any(p.match(a) for p in patterns)]
    assert undocumented == []
    missing = [n for n, p in zip(documented, patterns, strict=True)
               if not any(p.match(a) for a in alarms)]
    assert missing == []
    # and the checklist's last look lists them all
    for name in documented:
        assert f"`{name}`" in _section("First deploy"), name


def test_what_the_guides_say_no_alarm_repeats_has_no_alarm(
        report_template: dict[str, Any]) -> None:
    restore_guide = (ROOT / "docs" / "restore.md").read_text()
    said = {metric for text in (GUIDE, restore_guide) for metric in re.findall(
        r"publishes\s+the\s+`(\w+)`\s+metric \(on the dashboard; no alarm repeats it\)"
        r"|publishes\s+`(\w+)`\s+\(on the dashboard; no alarm repeats it\)", text)
        for metric in metric if metric}
    assert said == {"BackupCollapsed", "RestoreTestFailed"}
    alarms = json.dumps(resources(report_template, "AWS::CloudWatch::Alarm"))
    for metric in said:
        assert f'"MetricName": "{metric}"' not in alarms, metric
        assert metric in json.dumps(report_template["Resources"])  # but it is published


def test_the_endpoint_count_and_their_billing_match_the_template(synth_with: Any) -> None:
    from tests.infra.test_network import NETWORK

    template = synth_with(network={**NETWORK, "egress": "endpoints",
                                   "route_table_ids": ["rtb-0123456789abcdef0",
                                                       "rtb-0123456789abcdef1"]})
    endpoints = [e["Properties"] for e in resources(template, "AWS::EC2::VPCEndpoint").values()]
    interfaces = [e for e in endpoints if e.get("VpcEndpointType") == "Interface"]
    zones = len(NETWORK["availability_zones"])
    assert {len(e["SubnetIds"]) for e in interfaces} == {zones}
    words = {2: "two", 6: "six", 12: "twelve"}
    network = " ".join(_section("Network").split())
    assert (f"That is {words[len(interfaces)]} interface endpoints, each with a network "
            "interface in every subnet's zone") in network
    assert f"({words[len(interfaces) * zones]} in {words[zones]} zones)" in network
    assert "about as much as" not in network  # no price claim the template cannot back


def test_a_new_database_has_rpo_hours_before_its_rpo_alarm(template: dict[str, Any],
                                                           config: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from backstop import index

    assert ("its `Rpo<db>` alarm stays OK for `rpo_hours` after the deploy"
            in " ".join(_section("Deploy").split()))
    (alarm,) = [a["Properties"] for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
                if lid.startswith("MonitoringRpoquotepro")]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        config.rpo_hours, "GreaterThanThreshold", "notBreaching")
    watched = datetime(2026, 3, 1, tzinfo=UTC)  # the RPO check's first look: no backup yet
    doc = index.empty("quotepro", now=watched)
    hours = config.rpo_hours
    assert index.ages(doc, now=watched).recovery_hours == 0
    assert index.ages(doc, now=watched + timedelta(hours=hours)).recovery_hours == hours
    assert index.ages(doc, now=watched + timedelta(hours=hours, minutes=15)
                      ).recovery_hours > hours
