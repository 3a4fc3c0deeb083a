"""The configured network: only what must reach a database runs in it, and it reaches AWS
through the endpoints the stack creates, or through a NAT the operator declared."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import resources

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
NETWORK = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": SUBNETS,
           "availability_zones": ["us-east-1a", "us-east-1b"],
           "security_group_ids": ["sg-0123456789abcdef0"]}
# What the functions and tasks in the VPC call (tests/infra/iam_calls.py), and the tasks'
# image pull and logs.
NEEDED = {"secretsmanager", "ssm", "states", "ecr.api", "ecr.dkr", "logs"}


def test_endpoints_give_the_vpc_everything_it_calls(synth_with: Any) -> None:
    template = synth_with(network={**NETWORK, "egress": "endpoints",
                                   "route_table_ids": ["rtb-0123456789abcdef0",
                                                       "rtb-0123456789abcdef1"]})
    endpoints = resources(template, "AWS::EC2::VPCEndpoint")
    gateway = [e for e in endpoints.values()
               if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"]
    interfaces = [e for e in endpoints.values()
                  if e["Properties"].get("VpcEndpointType") == "Interface"]
    (s3,) = gateway
    assert ".s3" in str(s3["Properties"]["ServiceName"])
    assert s3["Properties"]["RouteTableIds"] == ["rtb-0123456789abcdef0",
                                                 "rtb-0123456789abcdef1"]
    names = " ".join(str(e["Properties"]["ServiceName"]) for e in interfaces)
    for service in NEEDED:
        assert f".{service}" in names, (service, names)
    for endpoint in interfaces:
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
        assert endpoint["Properties"]["SubnetIds"] == SUBNETS
    # not one more than needed: no STS, no KMS
    assert len(interfaces) == len(NEEDED)


def test_nat_egress_creates_no_endpoint(synth_with: Any) -> None:
    template = synth_with(network={**NETWORK, "egress": "nat"})
    assert resources(template, "AWS::EC2::VPCEndpoint") == {}


def test_only_what_reaches_a_database_is_in_the_vpc(synth_with: Any) -> None:
    template = synth_with(network={**NETWORK, "egress": "nat"})
    in_vpc = sorted(p["Properties"]["Handler"]
                    for p in resources(template, "AWS::Lambda::Function").values()
                    if "VpcConfig" in p["Properties"])
    assert in_vpc == ["handlers.backup.handler", "handlers.restore.handler"]
    machine = next(m for lid, m in resources(template, "AWS::StepFunctions::StateMachine")
                   .items() if lid.startswith("BackupWorkflow"))
    assert "subnet-0123456789abcdef0" in str(machine["Properties"]["DefinitionString"])
