"""The Backstop stack: composes the constructs and grants what each function needs.

No resource is defined here; every resource belongs to the construct of its capability.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.alerts import Alerts
from infra.backup_workflow import BackupWorkflow
from infra.config import BackstopConfig
from infra.functions import Functions
from infra.monitoring import Monitoring
from infra.nag import acknowledge_functions, acknowledge_lock_table, acknowledge_workflow
from infra.recipients import RecipientKeys
from infra.schedules import Schedules
from infra.storage import Storage

# Validation and the check are quick; the margin covers them and the Lambda retries.
EXECUTION_MARGIN = cdk.Duration.minutes(30)


class BackstopStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig,
                 **kwargs: Any) -> None:
        super().__init__(scope, id_, description="Backstop: PostgreSQL backups that prove, "
                         "every day, that they restore", **kwargs)
        for name, value in config.tags.items():
            cdk.Tags.of(self).add(name, value)

        storage = Storage(self, "Storage", config=config)
        alerts = Alerts(self, "Alerts", config=config)
        recipients = RecipientKeys(self, "Recipients", keys=config.recipients)
        functions = Functions(self, "Functions", config=config)

        backup_timeout = cdk.Duration.seconds(config.backup_function.timeout_seconds)
        execution_timeout = backup_timeout.plus(EXECUTION_MARGIN)
        databases = ",".join(db.name for db in config.databases)
        location = storage.location()

        validate_fn = functions.function(
            "Validate", handler="handlers.validate.handler",
            description="Backstop: validate a backup request",
            environment={"DATABASES": databases,
                         "LOCK_SECONDS": str(int(execution_timeout.to_seconds()))})
        backup_fn = functions.function(
            "Backup", handler="handlers.backup.handler",
            description="Backstop: dump, encrypt and upload one database",
            environment={
                "BACKUP_LOCATION": location,
                "DATABASE_SECRETS": json.dumps(config.database_secrets(), separators=(",", ":")),
                "RECIPIENT_KEY_PARAMETERS": recipients.names()},
            timeout=backup_timeout, memory_mb=config.backup_function.memory_mb,
            ephemeral_storage_mb=config.backup_function.ephemeral_storage_mb, pgtools=True)
        check_fn = functions.function(
            "Check", handler="handlers.check.handler",
            description="Backstop: check a finished backup and publish its metrics",
            environment={"BACKUP_LOCATION": location,
                         "COLLAPSED_FRACTION": repr(config.collapsed_fraction)})
        rpo_fn = functions.function(
            "RpoCheck", handler="handlers.rpo.handler",
            description="Backstop: publish the recovery point age of every database",
            environment={"BACKUP_LOCATION": location, "DATABASES": databases,
                         "RPO_HOURS": str(config.rpo_hours)})

        storage.grant_write_backups(backup_fn)
        storage.grant_read_backups(check_fn)
        storage.grant_read_backups(rpo_fn)
        recipients.grant_read(backup_fn)
        for i, db in enumerate(config.databases):
            secret = (secretsmanager.Secret.from_secret_complete_arn(self, f"Secret{i}", db.secret)
                      if db.secret_is_arn else
                      secretsmanager.Secret.from_secret_name_v2(self, f"Secret{i}", db.secret))
            secret.grant_read(backup_fn)

        workflow = BackupWorkflow(
            self, "BackupWorkflow", validate_fn=validate_fn, backup_fn=backup_fn,
            check_fn=check_fn, topic=alerts.topic, topic_key=alerts.key,
            backup_timeout=backup_timeout, execution_timeout=execution_timeout,
            log_retention_days=config.log_retention_days)
        Schedules(self, "Schedules", config=config, state_machine=workflow.state_machine)
        Monitoring(self, "Monitoring", config=config, topic=alerts.topic,
                   state_machine=workflow.state_machine, rpo_check_fn=rpo_fn,
                   functions={"Validate": validate_fn, "Backup": backup_fn, "Check": check_fn,
                              "RpoCheck": rpo_fn})

        self.storage = storage
        self.state_machine = workflow.state_machine
        cdk.CfnOutput(self, "BackupBucketName", value=storage.bucket.bucket_name)
        cdk.CfnOutput(self, "BackupStateMachineArn", value=workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "AlertTopicArn", value=alerts.topic.topic_arn)

        acknowledge_functions(functions, prefix=config.prefix)
        acknowledge_workflow(workflow, functions=[validate_fn, backup_fn, check_fn])
        acknowledge_lock_table(workflow.locks)
