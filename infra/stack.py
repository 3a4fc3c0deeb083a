"""The Backstop stack: composes the constructs and grants what each function needs.

No resource is defined here; every resource belongs to the construct of its capability.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.alerts import Alerts
from infra.backup_workflow import BackupWorkflow
from infra.config import BackstopConfig
from infra.container_runner import ContainerRunner
from infra.database_config import Scope
from infra.endpoints import VpcEndpoints
from infra.fleet import FleetBackup
from infra.functions import Functions, Placement
from infra.monitoring import Monitoring
from infra.nag import (
    acknowledge_backup_task,
    acknowledge_fleet,
    acknowledge_functions,
    acknowledge_lock_table,
    acknowledge_report,
    acknowledge_restore,
    acknowledge_workflow,
)
from infra.recipients import RecipientKeys
from infra.report import ChecklistReport
from infra.restore_workflow import RESTORE, VERIFY, RestoreWorkflow
from infra.schedules import Schedules
from infra.scratch import ScratchNetwork, ScratchSweeper
from infra.storage import Storage

# Validation and the check are quick; the margin covers them, the Lambda retries and the
# Fargate task's start.
EXECUTION_MARGIN = cdk.Duration.minutes(30)
# A restore execution: plan (one function timeout), the instance wait, the restore, deleting
# the instance (its retries wait up to 30 minutes), and this margin.
RESTORE_MARGIN = cdk.Duration.minutes(15 + 30 + 30)


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
        container_backup_timeout = cdk.Duration.hours(config.backup_container.timeout_hours)
        execution_timeout = container_backup_timeout.plus(EXECUTION_MARGIN)
        databases = ",".join(db.name for db in config.databases)
        restore = config.restore
        scratch = ScratchNetwork(self, "Scratch", network=functions.network,
                                 log_retention_days=config.log_retention_days)
        if functions.network is not None and config.network is not None \
                and config.network.egress == "endpoints":
            VpcEndpoints(self, "Endpoints", placement=functions.network,
                         clients=[*functions.network.security_groups, scratch.client_sg])

        limits = {"BACKUP_SECONDS": str(config.backup_function.timeout_seconds),
                  "BACKUP_TASK_SECONDS": str(int(container_backup_timeout.to_seconds()))}
        validate_fn = functions.function(
            "Validate", handler="handlers.validate.handler",
            description="Backstop: validate a backup request and choose its runner",
            environment={"DATABASES": databases, **storage.store_env(),
                         "LOCK_SECONDS": str(int(execution_timeout.to_seconds())),
                         "DATABASE_RUNNERS": json.dumps(
                             {db.name: db.runner for db in config.databases
                              if db.runner != "auto"}, separators=(",", ":")), **limits})
        backup_env = {
            **storage.store_env(),
            "DATABASE_SECRETS": json.dumps(config.database_secrets(), separators=(",", ":")),
            "DATABASE_CHECKS": json.dumps(config.database_checks(), separators=(",", ":")),
            "DATABASE_PROFILES": json.dumps(config.database_profiles(), separators=(",", ":")),
            "RECIPIENT_KEY_PARAMETERS": recipients.names()}
        backup_fn = functions.function(
            "Backup", handler="handlers.backup.handler",
            description="Backstop: dump, encrypt and upload one database",
            environment=backup_env,
            timeout=backup_timeout, memory_mb=config.backup_function.memory_mb,
            ephemeral_storage_mb=config.backup_function.ephemeral_storage_mb, pgtools=True,
            placement=functions.network)
        # The backup task reaches the databases where the function does: the configured
        # network, or (public endpoints) Backstop's own VPC, out through its NAT gateway.
        backup_runner = ContainerRunner(
            self, "BackupRunner", config=config, name="Backup", sizes=config.backup_container,
            placement=functions.network or Placement(scratch.vpc, scratch.subnets,
                                                     [scratch.client_sg]),
            environment={**backup_env, **limits})
        check_fn = functions.function(
            "Check", handler="handlers.check.handler",
            description="Backstop: check a finished backup and publish its metrics",
            environment={**storage.store_env(),
                         "COLLAPSED_FRACTION": repr(config.collapsed_fraction)})
        rpo_fn = functions.function(
            "RpoCheck", handler="handlers.rpo.handler",
            description="Backstop: publish the recovery point age of every database",
            environment={**storage.store_env(), "DATABASES": databases,
                         "RPO_HOURS": str(config.rpo_hours),
                         "DATABASE_SCOPES": json.dumps(
                             {db.name: db.scope.to_input() for db in config.databases
                              if db.scope != Scope()}, separators=(",", ":"))})

        storage.grant_read_backups(validate_fn)  # the database's index, for the runner
        storage.grant_read_backups(check_fn)
        storage.grant_read_backups(rpo_fn)
        storage.grant_write_index(rpo_fn)  # builds a missing index once, from the manifests
        secrets = [self._secret(f"Secret{i}", db.secret) for i, db in enumerate(config.databases)]
        for grantee in (backup_fn, backup_runner.task_role):
            storage.grant_write_backups(grantee)
            recipients.grant_read(grantee)
            for secret in secrets:
                secret.grant_read(grantee)

        workflow = BackupWorkflow(
            self, "BackupWorkflow", validate_fn=validate_fn, backup_fn=backup_fn,
            check_fn=check_fn, topic=alerts.topic, topic_key=alerts.key, runner=backup_runner,
            backup_timeout=backup_timeout, container_timeout=container_backup_timeout,
            execution_timeout=execution_timeout, log_retention_days=config.log_retention_days)
        # ---- restore verification and manual restores
        restore_timeout = cdk.Duration.seconds(restore.function.timeout_seconds)
        container_timeout = cdk.Duration.hours(restore.container.timeout_hours)
        instance_wait = cdk.Duration.minutes(restore.instance_wait_minutes)
        restore_execution_timeout = instance_wait.plus(container_timeout).plus(RESTORE_MARGIN)
        workflow_hours = math.ceil(restore_execution_timeout.to_minutes() / 60)
        restore_env = {**storage.store_env(),
                       "DATABASE_CHECKS": json.dumps(config.database_checks(),
                                                     separators=(",", ":")),
                       "PRIVATE_KEY_SECRET": restore.private_key_secret,
                       "RECIPIENT_KEY_PARAMETERS": recipients.names()}
        plan_fn = functions.function(
            "RestorePlan", handler="handlers.plan.handler",
            description="Backstop: check a restore request, choose and pre-check the backup",
            environment={
                **storage.store_env(), "DATABASES": databases,
                # which configured database an existing target is (its index sizes the
                # pre-restore backup); never read as a secret here
                "DATABASE_SECRETS": json.dumps(config.database_secrets(), separators=(",", ":")),
                "PRIVATE_KEY_SECRET": restore.private_key_secret,
                "RESTORE_TARGET_SECRETS": json.dumps(list(restore.target_secrets),
                                                     separators=(",", ":")),
                "RESTORE_MB_S": repr(restore.throughput_mb_s),
                "RESTORE_TMP_BYTES": str(restore.function.ephemeral_storage_mb * 1024**2),
                # the restore function's limit; backstop.runners keeps a margin below it
                "RESTORE_SECONDS": str(restore.function.timeout_seconds),
                "KEEP_HOURS": str(restore.keep_hours),
                "MAX_KEEP_HOURS": str(restore.max_keep_hours),
                "WORKFLOW_HOURS": str(workflow_hours)},
            timeout=cdk.Duration.minutes(15), memory_mb=1024, pgtools=True)
        restore_fn = functions.function(
            "Restore", handler="handlers.restore.handler",
            description="Backstop: restore a backup and verify it against its manifest",
            environment=restore_env, timeout=restore_timeout,
            memory_mb=restore.function.memory_mb,
            ephemeral_storage_mb=restore.function.ephemeral_storage_mb, pgtools=True,
            placement=scratch.placement)
        sweeper_fn = functions.function(
            "ScratchSweeper", handler="handlers.sweep.handler",
            description="Backstop: delete scratch instances that outlived their time",
            environment={"DEFAULT_KEEP_HOURS": str(workflow_hours)},
            timeout=cdk.Duration.minutes(2))
        runner = ContainerRunner(self, "RestoreRunner", config=config, name="Restore",
                                 sizes=restore.container, placement=scratch.placement,
                                 environment=restore_env, cluster=backup_runner.cluster)

        verifier_key = self._secret("VerifierKey", restore.private_key_secret)
        targets = [self._secret(f"RestoreTarget{i}", name)
                   for i, name in enumerate(restore.target_secrets)]
        storage.grant_read_backups(plan_fn)
        for grantee in (restore_fn, runner.task_role):
            storage.grant_write_backups(grantee)  # verification records, pre-restore backups
            recipients.grant_read(grantee)
            scratch.grant_master_secret(grantee)
        for grantee in (plan_fn, restore_fn, runner.task_role):
            verifier_key.grant_read(grantee)
            for target in targets:
                target.grant_read(grantee)
        # The tasks report their outcome with the task token (no resource-level permission).
        for task_role in (runner.task_role, backup_runner.task_role):
            task_role.add_to_principal_policy(iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=["*"]))

        workflows = {kind: RestoreWorkflow(
            self, name, kind=kind, plan_fn=plan_fn, restore_fn=restore_fn, network=scratch,
            runner=runner, topic=alerts.topic, topic_key=alerts.key,
            instance_class=restore.instance_class, instance_wait=instance_wait,
            restore_timeout=restore_timeout, container_timeout=container_timeout,
            execution_timeout=restore_execution_timeout,
            log_retention_days=config.log_retention_days)
            for kind, name in ((VERIFY, "RestoreVerification"), (RESTORE, "ManualRestore"))}
        verification = workflows[VERIFY].state_machine
        manual = workflows[RESTORE].state_machine
        ScratchSweeper(self, "ScratchSweeper", network=scratch, sweeper_fn=sweeper_fn,
                       state_machines=[verification, manual])

        fleet = FleetBackup(self, "FleetBackup", config=config, backup=workflow.state_machine,
                            backup_timeout=execution_timeout)
        Schedules(self, "Schedules", config=config, state_machine=workflow.state_machine,
                  fleet=fleet.state_machine, classes=fleet.classes, verification=verification)
        checklist = ChecklistReport(self, "Report", config=config, functions=functions,
                                    storage=storage, topic=alerts.topic, topic_key=alerts.key)
        Monitoring(self, "Monitoring", config=config, topic=alerts.topic,
                   state_machine=workflow.state_machine, rpo_check_fn=rpo_fn,
                   restore_machines={"RestoreVerification": verification,
                                     "ManualRestore": manual},
                   # every other workflow whose timeout the one timed-out alarm watches
                   fleet_machines={"FleetBackup": fleet.state_machine,
                                   "Report": checklist.state_machine},
                   scratch_age_limit_hours=workflow_hours + restore.max_keep_hours + 1,
                   functions={"Validate": validate_fn, "Backup": backup_fn, "Check": check_fn,
                              "RpoCheck": rpo_fn, "RestorePlan": plan_fn, "Restore": restore_fn,
                              "ScratchSweeper": sweeper_fn})

        self.storage = storage
        self.state_machine = workflow.state_machine
        self.verification_state_machine = verification
        self.manual_restore_state_machine = manual
        cdk.CfnOutput(self, "BackupBucketName", value=storage.bucket.bucket_name)
        cdk.CfnOutput(self, "BackupStateMachineArn", value=workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "FleetBackupStateMachineArn",
                      value=fleet.state_machine.state_machine_arn,
                      description="The schedules start this: every database on a schedule")
        cdk.CfnOutput(self, "RestoreVerificationStateMachineArn",
                      value=verification.state_machine_arn)
        cdk.CfnOutput(self, "ManualRestoreStateMachineArn", value=manual.state_machine_arn)
        cdk.CfnOutput(self, "ReportStateMachineArn",
                      value=checklist.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "AlertTopicArn", value=alerts.topic.topic_arn)
        cdk.CfnOutput(self, "ScratchClientSecurityGroupId",
                      value=scratch.client_sg.security_group_id,
                      description="Attach to a host that should reach scratch instances")

        acknowledge_functions(functions, prefix=config.prefix)
        acknowledge_workflow(workflow, functions=[validate_fn, backup_fn, check_fn])
        acknowledge_lock_table(workflow.locks)
        acknowledge_workflow(checklist, functions=[checklist.function])
        acknowledge_report(functions, prefix=config.prefix, replica_arn=None if config.replication
                           is None else config.replication.destination_bucket_arn)
        acknowledge_restore(task_definition=runner.task_definition, runner=runner,
                            workflows=list(workflows.values()), functions=functions,
                            workflow_functions=[plan_fn, restore_fn], prefix=config.prefix)
        acknowledge_fleet(fleet, backup=workflow.state_machine)
        acknowledge_backup_task(workflow=workflow, runner=backup_runner,
                                task_definition=backup_runner.task_definition,
                                prefix=config.prefix)

    def _secret(self, id_: str, name: str) -> secretsmanager.ISecret:
        return (secretsmanager.Secret.from_secret_complete_arn(self, id_, name)
                if name.startswith("arn:") else
                secretsmanager.Secret.from_secret_name_v2(self, id_, name))
