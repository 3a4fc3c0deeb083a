"""How what runs in the configured network reaches AWS: VPC endpoints, or the VPC's NAT.

Only what must reach a database runs in the configured subnets: the backup function and task,
the restore function and task. They call S3, Secrets Manager, SSM (recipient keys), Step
Functions (the tasks' task tokens), and the tasks pull their image from ECR (its layers come
from S3) and log to CloudWatch Logs. With ``network.egress`` "endpoints" this construct
creates a gateway endpoint for S3 on the subnets' route tables and an interface endpoint (with
private DNS) for each of the others, reachable on 443 from the groups those functions and tasks
carry. With "nat" the subnets already route to a NAT gateway and nothing is created. No STS
endpoint: functions and tasks get their credentials from Lambda and the ECS agent, not STS;
no KMS endpoint: S3 encrypts server-side, nothing calls KMS from the VPC.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.functions import Placement

INTERFACE_SERVICES = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}


class VpcEndpoints(Construct):
    def __init__(self, scope: Construct, id_: str, *, placement: Placement,
                 clients: list[ec2.ISecurityGroup]) -> None:
        super().__init__(scope, id_)
        vpc, subnets = placement.vpc, ec2.SubnetSelection(subnets=placement.subnets)
        self.s3 = vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets])
        self.security_group = ec2.SecurityGroup(
            self, "Sg", vpc=vpc, allow_all_outbound=False,
            description="Backstop VPC endpoints: HTTPS from the functions and tasks")
        for client in clients:
            self.security_group.add_ingress_rule(client, ec2.Port.tcp(443),
                                                 "AWS APIs from Backstop functions and tasks")
        self.interfaces = {
            name: vpc.add_interface_endpoint(
                name, service=service, subnets=subnets, private_dns_enabled=True, open=False,
                security_groups=[self.security_group])
            for name, service in INTERFACE_SERVICES.items()}
