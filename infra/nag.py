"""cdk-nag (AwsSolutionsChecks) acknowledgements, each with the reason the finding is accepted.

Every acknowledgement is narrow: one rule (one resource pattern for IAM5) on the construct
that causes it. A new finding anywhere else still fails the synth.
"""

from __future__ import annotations

import aws_cdk as cdk
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


def acknowledge_workflow(workflow: IConstruct, *, functions: list[lambda_.Function]) -> None:
    acknowledge(workflow, "AwsSolutions-IAM5[Resource::*]",
                "Execution logs (logs:*LogDelivery*), tracing (xray:*) and "
                "cloudwatch:PutMetricData support no resource-level permissions.")
    stack = cdk.Stack.of(workflow)
    for fn in functions:
        child = fn.node.default_child
        assert isinstance(child, cdk.CfnElement)
        logical_id = stack.resolve(stack.get_logical_id(child))
        acknowledge(workflow, f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                    "LambdaInvoke may call any version or alias of the workflow's own "
                    "function; the grant names that function only.")


def acknowledge_lock_table(table: IConstruct) -> None:
    acknowledge(table, "AwsSolutions-DDB3",
                "The table holds only short-lived per-database locks of running backups; "
                "nothing in it needs to be recovered.")
