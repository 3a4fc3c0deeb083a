"""Where alarms and workflow failures go: one KMS-encrypted SNS topic with e-mail subscribers."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import BackstopConfig


class Alerts(Construct):
    """The alert topic. CloudWatch alarms and the backup workflow publish to it."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(self, "Key", description="Backstop alert topic encryption",
                           enable_key_rotation=True, removal_policy=cdk.RemovalPolicy.DESTROY)
        # CloudWatch alarms publish as the service itself, so the key must let it encrypt.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}))
        self.topic = sns.Topic(self, "Topic", display_name="Backstop alerts",
                               master_key=self.key, enforce_ssl=True)
        for email in config.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
