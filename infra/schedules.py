"""When backups and restore tests run by themselves: EventBridge rules that start workflows.

Per scheduled retention class, one cron rule (UTC) that starts the fleet backup workflow,
which backs up every database on that schedule (``infra/fleet.py``). One more rule turns a
custom ``backstop.pre-deploy`` event into a pre-migration backup, so CI/CD can ask for "a
backup before every deploy" with one ``aws events put-events``. Per database, a restore
verification of its newest backup runs after the night's backups (``restore.schedule``:
daily, or weekly on Sunday, 05:00 UTC, after the daily 02:00, weekly 03:00 and monthly 04:00
backups).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import BackstopConfig

PRE_DEPLOY_SOURCE = "backstop.pre-deploy"


@dataclass(frozen=True)
class Cadence:
    retention: str
    cron: dict[str, str]
    description: str


VERIFICATION_CADENCES = {
    "daily": Cadence("daily", {"minute": "0", "hour": "5"}, "every day 05:00 UTC"),
    "weekly": Cadence("weekly", {"minute": "0", "hour": "5", "week_day": "SUN"},
                      "every Sunday 05:00 UTC"),
}

CADENCES = {
    "daily": Cadence("daily", {"minute": "0", "hour": "2"}, "every day 02:00 UTC"),
    "weekly": Cadence("weekly", {"minute": "0", "hour": "3", "week_day": "SUN"},
                      "every Sunday 03:00 UTC"),
    "monthly": Cadence("monthly", {"minute": "0", "hour": "4", "day": "1"},
                       "the 1st of every month 04:00 UTC"),
}


class Schedules(Construct):
    """Scheduled and event-driven starts of the backup workflow."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig,
                 state_machine: sfn.IStateMachine, fleet: sfn.IStateMachine,
                 classes: list[str], verification: sfn.IStateMachine) -> None:
        super().__init__(scope, id_)
        for retention in classes:
            cadence = CADENCES[retention]
            events.Rule(
                self, f"Fleet{_pascal(retention)}",
                description=f"Backstop: {retention} backup of every database on it, "
                            f"{cadence.description}",
                schedule=events.Schedule.cron(**cadence.cron),
                targets=[targets.SfnStateMachine(
                    fleet, input=events.RuleTargetInput.from_object({"retention": retention}))])

        self.pre_deploy = events.Rule(
            self, "PreDeploy",
            description="Backstop: pre-migration backup requested by CI/CD before a deploy",
            event_pattern=events.EventPattern(source=[PRE_DEPLOY_SOURCE]),
            targets=[targets.SfnStateMachine(
                state_machine, input=events.RuleTargetInput.from_object({
                    "database": events.EventField.from_path("$.detail.database"),
                    "retention": "pre-migration",
                    "reason": events.EventField.from_path("$.detail.reason")}))])

        verify = VERIFICATION_CADENCES.get(config.restore.schedule)  # None: "off"
        for db in config.databases if verify else ():
            assert verify is not None
            events.Rule(
                self, f"{_pascal(db.name)}Verification",
                description=f"Backstop: restore test of the newest backup of {db.name}, "
                            f"{verify.description}",
                schedule=events.Schedule.cron(**verify.cron),
                targets=[targets.SfnStateMachine(
                    verification, input=events.RuleTargetInput.from_object({
                        "database": db.name, "backup_id": "latest"}))])


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
