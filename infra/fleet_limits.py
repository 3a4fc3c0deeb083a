"""How many databases one stack holds: checked at synth, before CloudFormation's own limit.

A CloudFormation stack holds at most 500 resources. Backstop's stack is a fixed part (largest
with its own VPC, the monthly report, replication and Object Lock), one SNS subscription per
alarm e-mail, and per database its RPO, verified-age, RTO and near-limit alarms and its
verification schedule; an RDS source whose PITR the report watches adds its lag and retention
alarms. ``tests/infra/test_fleet_limits.py`` measures these from real synths and fails when a
number here is too small. Past the limit ``cdk synth`` would stop with CDK's raw error; this
says instead how many databases fit and what to do.
"""

from __future__ import annotations

from infra.config_values import ConfigurationError

MAX_RESOURCES = 500  # CloudFormation's quota per stack
FIXED_RESOURCES = 150  # measured 142 (the largest fixed part), with room for a few more
PER_DATABASE = 5
PER_PITR_SOURCE = 2


def resources(databases: int, *, alarm_emails: int, pitr_sources: int) -> int:
    """The resources a stack of ``databases`` makes, at most."""
    return (FIXED_RESOURCES + alarm_emails + PER_DATABASE * databases
            + PER_PITR_SOURCE * pitr_sources)


def check_fleet_size(databases: int, *, alarm_emails: int, pitr_sources: int) -> None:
    needed = resources(databases, alarm_emails=alarm_emails, pitr_sources=pitr_sources)
    if needed <= MAX_RESOURCES:
        return
    allowed = (MAX_RESOURCES - resources(0, alarm_emails=alarm_emails,
                                         pitr_sources=pitr_sources)) // PER_DATABASE
    raise ConfigurationError(
        "databases", f"{databases} databases need about {needed} CloudFormation resources, "
        f"more than the {MAX_RESOURCES} one stack holds: this stack takes at most {allowed}",
        "split the fleet across stacks, each deployed with its own config file (its own "
        "stack_name and databases)")
