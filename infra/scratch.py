"""Scratch RDS instances: where they live, who may reach them, who may create and delete them,
and the sweeper that deletes every one a workflow left behind.

Placement: the configured ``network`` (its private subnets, two zones at least), or, without
one, a VPC of Backstop's own: two zones, private subnets with one NAT gateway (the restore
function and the Fargate task reach S3, Secrets Manager, ECR and Step Functions through it;
S3 through a free gateway endpoint), flow logs of rejected traffic.

Two security groups: ``instance_sg`` on the scratch instances accepts PostgreSQL only from
``client_sg``, which only the restore function and the restore task carry.

IAM is scoped by name and tag: instances are ``backstop-scratch-*`` (the library's
``NAME_PREFIX``); creating one requires tagging it ``backstop:scratch=true``; the sweeper may
delete only instances that carry that tag. Nothing gets ``rds:*``.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from backstop.scratch import NAME_PREFIX, SCRATCH_TAG
from infra.functions import Placement, log_retention

POSTGRES_PORT = 5432
SWEEP_RATE = cdk.Duration.hours(1)
VPC_CIDR = "10.80.0.0/16"


class ScratchNetwork(Construct):
    """VPC placement, security groups and DB subnet group of the scratch instances."""

    def __init__(self, scope: Construct, id_: str, *, network: Placement | None,
                 log_retention_days: int) -> None:
        super().__init__(scope, id_)
        if network is None:
            flow_logs = logs.LogGroup(self, "FlowLogs", retention=log_retention(
                log_retention_days), removal_policy=cdk.RemovalPolicy.DESTROY)
            vpc = ec2.Vpc(
                self, "Vpc", ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR), max_azs=2,
                nat_gateways=1, restrict_default_security_group=False,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC,
                                            cidr_mask=24),
                    ec2.SubnetConfiguration(name="Private", cidr_mask=24,
                                            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
                gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.S3)},
                flow_logs={"Rejected": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.REJECT)})
            self.vpc: ec2.IVpc = vpc
            self.subnets = list(vpc.private_subnets)
            shared: list[ec2.ISecurityGroup] = []
        else:
            self.vpc, self.subnets, shared = network.vpc, network.subnets, network.security_groups

        self.client_sg = ec2.SecurityGroup(
            self, "ClientSg", vpc=self.vpc, allow_all_outbound=True,
            description="Backstop restore function and task: may reach scratch instances")
        self.instance_sg = ec2.SecurityGroup(
            self, "InstanceSg", vpc=self.vpc, allow_all_outbound=False,
            description="Backstop scratch RDS instances: PostgreSQL from restore clients only")
        self.instance_sg.add_ingress_rule(self.client_sg, ec2.Port.tcp(POSTGRES_PORT),
                                          "PostgreSQL from the restore function and task")
        self.subnet_group = rds.SubnetGroup(
            self, "SubnetGroup", vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=self.subnets),
            description="Backstop scratch instances for restore verification",
            removal_policy=cdk.RemovalPolicy.DESTROY)
        # The restore side: scratch access, plus the configured groups (existing targets).
        self.placement = Placement(self.vpc, self.subnets, [self.client_sg, *shared])

    # ----------------------------------------------------------------- IAM, by name and tag
    def instance_arn(self) -> str:
        """Every scratch instance, and nothing else: the library's name prefix."""
        return cdk.Arn.format(cdk.ArnComponents(
            service="rds", resource="db", resource_name=f"{NAME_PREFIX}*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME), cdk.Stack.of(self))

    def create_resources(self) -> list[str]:
        """What CreateDBInstance is authorized on: the instance, its subnet group, and the
        default PostgreSQL parameter and option groups it gets."""
        stack = cdk.Stack.of(self)

        def arn(kind: str, name: str) -> str:
            return cdk.Arn.format(cdk.ArnComponents(
                service="rds", resource=kind, resource_name=name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME), stack)

        return [self.instance_arn(), arn("subgrp", self.subnet_group.subnet_group_name),
                arn("pg", "default.postgres*"), arn("og", "default:postgres-*")]

    def create_statements(self) -> list[iam.PolicyStatement]:
        """Besides CreateDBInstance itself: tagging on create (only with the scratch tag), the
        RDS-managed master secret (CreateSecret, TagResource, and kms:DescribeKey on the key
        that encrypts it, as the RDS user guide lists for ManageMasterUserPassword), and RDS's
        service-linked role on first use."""
        stack = cdk.Stack.of(self)
        return [
            iam.PolicyStatement(
                actions=["rds:AddTagsToResource"], resources=[self.instance_arn()],
                conditions={"StringEquals": {f"aws:RequestTag/{SCRATCH_TAG}": "true"}}),
            iam.PolicyStatement(
                actions=["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
                resources=[stack.format_arn(service="secretsmanager", resource="secret",
                                            resource_name="rds!db-*",
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]),
            # the AWS managed aws/secretsmanager key, whose id differs per account and region
            iam.PolicyStatement(
                actions=["kms:DescribeKey"],
                resources=[stack.format_arn(service="kms", resource="key", resource_name="*")]),
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[stack.format_arn(
                    service="iam", region="", resource="role",
                    resource_name="aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS")],
                conditions={"StringEquals": {"iam:AWSServiceName": "rds.amazonaws.com"}})]

    def grant_master_secret(self, grantee: iam.IGrantable) -> None:
        """Read the RDS-managed master secret of scratch instances, and of no other instance."""
        stack = cdk.Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["secretsmanager:GetSecretValue"],
            resource_arns=[stack.format_arn(service="secretsmanager", resource="secret",
                                            resource_name="rds!db-*",
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)],
            conditions={"StringLike": {
                "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn":
                    self.instance_arn()}})


class ScratchSweeper(Construct):
    """Runs the sweeper every hour, and at once for an aborted or timed-out restore."""

    def __init__(self, scope: Construct, id_: str, *, network: ScratchNetwork,
                 sweeper_fn: lambda_.IFunction, state_machines: list[sfn.IStateMachine]) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=sweeper_fn, actions=["rds:DescribeDBInstances"],
            resource_arns=[stack.format_arn(service="rds", resource="db", resource_name="*",
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)])
        iam.Grant.add_to_principal(
            grantee=sweeper_fn, actions=["rds:DeleteDBInstance"],
            resource_arns=[network.instance_arn()],
            conditions={"StringEquals": {f"aws:ResourceTag/{SCRATCH_TAG}": "true"}})
        self.schedule = events.Rule(
            self, "Hourly", description="Backstop: delete scratch instances past their time",
            schedule=events.Schedule.rate(SWEEP_RATE),
            targets=[targets.LambdaFunction(sweeper_fn)])
        # Failed executions ran their own cleanup path (a failed manual restore may keep its
        # instance for inspection); aborted and timed-out ones could not.
        self.stopped = events.Rule(
            self, "Stopped", description="Backstop: delete the scratch instance of a restore "
            "execution that was aborted or timed out",
            event_pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"status": ["ABORTED", "TIMED_OUT"],
                        "stateMachineArn": [m.state_machine_arn for m in state_machines]}),
            targets=[targets.LambdaFunction(sweeper_fn)])
