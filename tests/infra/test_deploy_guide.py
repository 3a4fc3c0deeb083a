"""docs/deploy.md against the template: the first-deploy checklist names the stack's real
outputs (all of them), and the alarm table names every alarm the stack creates, and no other."""

from __future__ import annotations

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
