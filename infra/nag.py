"""cdk-nag (AwsSolutionsChecks) acknowledgements, each with the reason the finding is accepted.

Every acknowledgement is narrow: one rule (one resource pattern for IAM5) on the construct
that causes it. A new finding anywhere else still fails the synth.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

PACK = "AwsSolutions::"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=PACK + rule, reason=reason))


def acknowledge_functions(functions: IConstruct, *, prefix: str) -> None:
    acknowledge(functions, "AwsSolutions-L1",
                "Python 3.12 is pinned on purpose: the pgtools layer is built in the AL2023 "
                "python3.12 image and the dependency layer holds cp312 wheels; the runtime, the "
                "layers and the pins move together in one change.")
    acknowledge(functions, "AwsSolutions-IAM5[Resource::*]",
                "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
                "resource-level permissions.")
    acknowledge(functions, f"AwsSolutions-IAM5[Resource::<BackupBucket.Arn>/{prefix}/*]",
                "Backup object keys contain the backup id and date, unknown in advance; access "
                "is limited to the Backstop prefix of the backup bucket.")
    acknowledge(functions, f"AwsSolutions-IAM5[Resource::<BackupBucket.Arn>/{prefix}/index/*]",
                "The RPO check writes only the per-database index objects, one per "
                "configured database, named by the database under the index prefix.")


def acknowledge_report(functions: IConstruct, *, prefix: str, replica_arn: str | None) -> None:
    """The checklist report writes its reports and acknowledgements under their prefixes."""
    for kind in ("reports", "acknowledgements"):
        acknowledge(functions, f"AwsSolutions-IAM5[Resource::<BackupBucket.Arn>/{prefix}/{kind}/*]",
                    f"Each month's report and each acknowledgement gets its own key; the "
                    f"report function may write only under the {kind} prefix.")
    acknowledge(functions, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:"
                "<AWS::Region>:<AWS::AccountId>:alarm:*]",
                "The report lists the month's alarms that notify the alert topic (read only); "
                "any alarm of the account may, and alarm names are CloudFormation's.")
    if replica_arn:
        acknowledge(functions, f"AwsSolutions-IAM5[Resource::{replica_arn}/{prefix}/*]",
                    "The report checks (HEAD) that each backup's replica exists; backup keys "
                    "are unknown in advance.")


def acknowledge_workflow(workflow: IConstruct, *, functions: list[lambda_.Function]) -> None:
    acknowledge(workflow, "AwsSolutions-IAM5[Resource::*]",
                "Execution logs (logs:*LogDelivery*), tracing (xray:*) and "
                "cloudwatch:PutMetricData support no resource-level permissions.")
    for fn in functions:
        acknowledge(workflow, f"AwsSolutions-IAM5[Resource::<{_logical_id(fn)}.Arn>:*]",
                    "LambdaInvoke may call any version or alias of the workflow's own "
                    "function; the grant names that function only.")


def acknowledge_lock_table(table: IConstruct) -> None:
    acknowledge(table, "AwsSolutions-DDB3",
                "The table holds only short-lived per-database locks of running backups; "
                "nothing in it needs to be recovered.")


def acknowledge_restore(*, task_definition: ecs.TaskDefinition, workflows: list[IConstruct],
                        functions: IConstruct, workflow_functions: list[lambda_.Function],
                        runner: IConstruct, prefix: str) -> None:
    """The restore side: the scratch instances, the restore task and both workflows."""
    acknowledge(functions, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "service-role/AWSLambdaVPCAccessExecutionRole]",
                "Functions in a VPC need only the ENI permissions of this AWS policy, which "
                "Lambda itself documents for VPC access; EC2 ENI actions take no resource ARN.")
    master_secrets = ("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
                      "<AWS::Region>:<AWS::AccountId>:secret:rds!db-*]")
    scratch_instances = ("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:"
                         "<AWS::AccountId>:db:backstop-scratch-*]")
    acknowledge(functions, master_secrets,
                "RDS names each managed master secret rds!db-<uuid>; reading is further limited "
                "by a condition to secrets whose instance is a backstop-scratch-* instance.")
    acknowledge(functions, scratch_instances,
                "Scratch instances are named per execution under the backstop-scratch- prefix; "
                "the sweeper may delete one only if it is also tagged backstop:scratch=true.")
    acknowledge(functions, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:"
                "<AWS::AccountId>:db:*]",
                "The sweeper lists instances to find the scratch ones (read only); "
                "DescribeDBInstances without an identifier is authorized on every instance.")

    family = _task_family_revisions(task_definition)
    for workflow in workflows:
        acknowledge(workflow, "AwsSolutions-IAM5[Resource::*]",
                    "Execution logs, tracing, cloudwatch:PutMetricData and ecs:StopTask/"
                    "DescribeTasks of the .sync integration support no resource-level "
                    "permissions.")
        acknowledge(workflow, scratch_instances,
                    "Each execution creates, polls and deletes its own instance, named "
                    "backstop-scratch-<hash of the execution>; creating one requires the "
                    "backstop:scratch tag.")
        acknowledge(workflow, master_secrets,
                    "RDS creates the scratch instance's managed master secret as rds!db-<uuid> "
                    "on the caller's behalf; its name is unknown in advance.")
        acknowledge(workflow, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:"
                    "<AWS::Region>:<AWS::AccountId>:key/*]",
                    "kms:DescribeKey (metadata only) on the AWS managed aws/secretsmanager key "
                    "that encrypts the scratch instance's managed master secret; its key id "
                    "differs per account and region.")
        acknowledge(workflow, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:"
                    "<AWS::Region>:<AWS::AccountId>:pg:default.postgres*]",
                    "A scratch instance gets the default parameter group of its PostgreSQL "
                    "major version, which follows the backup's source.")
        acknowledge(workflow, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:"
                    "<AWS::Region>:<AWS::AccountId>:og:default:postgres-*]",
                    "A scratch instance gets the default option group of its PostgreSQL "
                    "major version, which follows the backup's source.")
        acknowledge(workflow, f"AwsSolutions-IAM5[Resource::{family}]",
                    "The .sync integration runs the restore task definition by family, so "
                    "that a new revision needs no new grant; the family is Backstop's own.")
        for fn in workflow_functions:
            acknowledge(workflow, f"AwsSolutions-IAM5[Resource::<{_logical_id(fn)}.Arn>:*]",
                        "LambdaInvoke may call any version or alias of the workflow's own "
                        "function; the grant names that function only.")
    acknowledge(runner, "AwsSolutions-IAM5[Resource::*]",
                "The task reports with its task token (states:SendTask*), and pulls its image "
                "(ecr:GetAuthorizationToken); neither supports resource-level permissions.")
    acknowledge(runner, f"AwsSolutions-IAM5[Resource::<BackupBucket.Arn>/{prefix}/*]",
                "The restore task records verifications in manifests and writes pre-restore "
                "backups, whose keys are unknown in advance; only under the Backstop prefix.")
    acknowledge(runner, master_secrets,
                "RDS names each managed master secret rds!db-<uuid>; reading is further limited "
                "by a condition to secrets whose instance is a backstop-scratch-* instance.")
    acknowledge(runner, "AwsSolutions-ECS2",
                "The container's environment holds only non-secret settings (store location, "
                "secret and parameter names); secrets are read at run time from Secrets "
                "Manager and never appear in the task definition.")


def _logical_id(fn: lambda_.Function) -> str:
    stack = cdk.Stack.of(fn)
    child = fn.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return str(stack.resolve(stack.get_logical_id(child)))


def _task_family_revisions(task_definition: ecs.TaskDefinition) -> str:
    """How cdk-nag renders ``<task definition family ARN>:*``, which CDK builds by splitting
    the task definition's ARN (its Ref) at deploy time."""
    stack = cdk.Stack.of(task_definition)
    ref = json.dumps(stack.resolve(task_definition.task_definition_arn), separators=(",", ":"))

    def part(i: int) -> str:
        return f'{{"Fn::Select":[{i},{{"Fn::Split":[":",{ref}]}}]}}'

    def name(j: int) -> str:
        return f'{{"Fn::Select":[{j},{{"Fn::Split":["/",{part(5)}]}}]}}'

    return f"arn:{part(1)}:{part(2)}:{part(3)}:{part(4)}:{name(0)}/{name(1)}:*"


def acknowledge_backup_task(*, workflow: IConstruct, runner: IConstruct,
                            task_definition: ecs.TaskDefinition, prefix: str) -> None:
    """The backup as a Fargate task: its role and the backup workflow's .sync integration."""
    family = _task_family_revisions(task_definition)
    acknowledge(workflow, "AwsSolutions-IAM5[Resource::*]",
                "Execution logs, tracing, cloudwatch:PutMetricData and ecs:StopTask/"
                "DescribeTasks of the .sync integration support no resource-level permissions.")
    acknowledge(workflow, f"AwsSolutions-IAM5[Resource::{family}]",
                "The .sync integration runs the backup task definition by family, so that a "
                "new revision needs no new grant; the family is Backstop's own.")
    acknowledge(runner, "AwsSolutions-IAM5[Resource::*]",
                "The task reports with its task token (states:SendTask*), and pulls its image "
                "(ecr:GetAuthorizationToken); neither supports resource-level permissions.")
    acknowledge(runner, f"AwsSolutions-IAM5[Resource::<BackupBucket.Arn>/{prefix}/*]",
                "Backup object keys contain the backup id and date, unknown in advance; "
                "only under the Backstop prefix.")
    acknowledge(runner, "AwsSolutions-ECS2",
                "The container's environment holds only non-secret settings (store location, "
                "secret and parameter names); secrets are read at run time from Secrets "
                "Manager and never appear in the task definition.")


def acknowledge_fleet(fleet: IConstruct, *, backup: IConstruct) -> None:
    """The fleet workflow starts one backup workflow execution per database and waits."""
    acknowledge(fleet, "AwsSolutions-IAM5[Resource::*]",
                "Execution logs (logs:*LogDelivery*) and tracing (xray:*) support no "
                "resource-level permissions.")
    stack = cdk.Stack.of(backup)
    machine = backup.node.default_child
    assert isinstance(machine, cdk.CfnElement)
    ref = json.dumps({"Ref": stack.resolve(stack.get_logical_id(machine))},
                     separators=(",", ":"))
    acknowledge(fleet, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f'<AWS::AccountId>:execution:{{"Fn::Select":[6,{{"Fn::Split":[":",{ref}]}}]}}*]',
                "startExecution.sync:2 describes and stops the backup workflow's own "
                "executions, whose names are generated per run.")
