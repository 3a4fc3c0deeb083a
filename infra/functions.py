"""Lambda functions with shared defaults, and the two layers they run on.

Every function of the stack comes from ``Functions.function``: Python 3.12 on the configured
architecture, JSON logs into an explicit log group with retention, active tracing, Powertools
settings, the Python dependencies layer, a VPC only when it must reach a database, and its own
role that starts with nothing but its log group and X-Ray. Callers grant the rest.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import BackstopConfig
from infra.config_values import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
PGTOOLS_DIR = ROOT / "layers" / "pgtools"
PYTHON_DEPS_DIR = ROOT / "layers" / "python-deps"
RUNTIME = lambda_.Runtime.PYTHON_3_12
# The AL2023 image CDK itself uses to bundle python3.12 functions: same OS as the runtime.
BUILD_IMAGE = "public.ecr.aws/sam/build-python3.12"
METRICS_NAMESPACE = "Backstop"
# Lambda caps a function's environment, names and values together, at 4 KB. A value not
# known until deploy (a token: the bucket's name, a key's ARN) is counted at the longest
# such a value gets, a KMS key ARN in the longest partition and region.
LAMBDA_ENV_BYTES = 4096
TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")
TOKEN_BYTES = len("arn:aws-iso-b:kms:us-isob-east-1:123456789012:key/mrk-") + 32
SERVICE_NAME = "backstop"
RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
             30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
             150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
             545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS", 1827: "FIVE_YEARS",
             2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
             3653: "TEN_YEARS"}


@dataclass(frozen=True)
class Placement:
    """Where a function (or task) runs: VPC, subnets, security groups."""

    vpc: ec2.IVpc
    subnets: list[ec2.ISubnet]
    security_groups: list[ec2.ISecurityGroup]


def _digest(*parts: str | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.read_bytes() if isinstance(part, Path) else part.encode())
    return h.hexdigest()


@jsii.implements(cdk.ILocalBundling)
class _PipPlatformBundling:
    """Builds the Python dependencies layer on the deploying machine, without Docker."""

    def __init__(self, arch: str) -> None:
        self._arch = arch

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        build = [sys.executable, str(PYTHON_DEPS_DIR / "build.py"), "--arch", self._arch,
                 "--out", output_dir]
        # False lets CDK fall back to the Docker command below.
        return subprocess.run(build, check=False).returncode == 0


class Functions(Construct):
    """The function factory and the layers shared by every function."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig) -> None:
        super().__init__(scope, id_)
        self._config = config
        arm = config.architecture == "arm64"
        self.architecture = lambda_.Architecture.ARM_64 if arm else lambda_.Architecture.X86_64
        docker_platform = "linux/arm64" if arm else "linux/amd64"

        self._code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR), exclude=["**/__pycache__", "**/*.pyc", "*.egg-info"])

        self.python_deps = lambda_.LayerVersion(
            self, "PythonDeps",
            description="Backstop Python dependencies (psycopg, Powertools, python-gnupg, ...)",
            compatible_runtimes=[RUNTIME], compatible_architectures=[self.architecture],
            code=lambda_.Code.from_asset(
                str(PYTHON_DEPS_DIR),
                asset_hash=_digest(config.architecture, PYTHON_DEPS_DIR / "requirements.txt",
                                   PYTHON_DEPS_DIR / "build.py"),
                bundling=cdk.BundlingOptions(
                    image=RUNTIME.bundling_image, platform=docker_platform,
                    local=_PipPlatformBundling(config.architecture),
                    command=["bash", "-c", "pip install --no-deps --only-binary=:all: "
                             "-r /asset-input/requirements.txt -t /asset-output/python"])))

        self.pgtools = lambda_.LayerVersion(
            self, "PgTools",
            description=f"PostgreSQL {config.postgres_version} client tools and gpg for AL2023",
            compatible_runtimes=[RUNTIME], compatible_architectures=[self.architecture],
            code=lambda_.Code.from_asset(
                str(PGTOOLS_DIR),
                asset_hash=_digest(config.architecture, config.postgres_version,
                                   PGTOOLS_DIR / "build.sh", PGTOOLS_DIR / "install-gpg.sh"),
                bundling=cdk.BundlingOptions(
                    image=cdk.DockerImage.from_registry(BUILD_IMAGE), platform=docker_platform,
                    user="root", environment={"PG_VERSION": config.postgres_version},
                    command=["bash", "/asset-input/build.sh"])))

        # The configured network (private databases), or None for public endpoints.
        self.network: Placement | None = None
        if config.network is not None:
            net = config.network
            # From ids, not a lookup: synth never calls AWS.
            vpc = ec2.Vpc.from_vpc_attributes(
                self, "Vpc", vpc_id=net.vpc_id, availability_zones=list(net.availability_zones),
                private_subnet_ids=list(net.subnet_ids),
                private_subnet_route_table_ids=list(net.route_table_ids) or None)
            self.network = Placement(vpc, list(vpc.private_subnets), [
                ec2.SecurityGroup.from_security_group_id(self, f"Sg{i}", sg, mutable=False)
                for i, sg in enumerate(net.security_group_ids)])

    def function(self, id_: str, *, handler: str, description: str,
                 environment: dict[str, str] | None = None,
                 timeout: cdk.Duration | None = None, memory_mb: int = 256,
                 ephemeral_storage_mb: int = 512, pgtools: bool = False,
                 placement: Placement | None = None) -> lambda_.Function:
        """A function running ``handlers.<module>.handler`` from ``functions/``, in
        ``placement`` when given (only what must reach a database), else outside any VPC."""
        log_group = logs.LogGroup(
            self, f"{id_}Logs", retention=log_retention(self._config.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY)
        role = iam.Role(self, f"{id_}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"Backstop {id_} function")
        log_group.grant_write(role)
        if placement is not None:
            role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSLambdaVPCAccessExecutionRole"))
        layers: list[lambda_.ILayerVersion] = [self.python_deps]
        if pgtools:
            layers.append(self.pgtools)
        environment = {"POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                       "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE, **(environment or {})}
        check_environment(id_, environment)
        fn = lambda_.Function(
            self, id_, description=description, runtime=RUNTIME, architecture=self.architecture,
            handler=handler, code=self._code, layers=layers, role=role, environment=environment,
            logging_format=lambda_.LoggingFormat.JSON, log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE, timeout=timeout or cdk.Duration.seconds(60),
            memory_size=memory_mb, ephemeral_storage_size=cdk.Size.mebibytes(ephemeral_storage_mb),
            vpc=placement.vpc if placement else None,
            security_groups=placement.security_groups if placement else None,
            vpc_subnets=ec2.SubnetSelection(subnets=placement.subnets) if placement else None)
        return fn


def check_environment(function: str, environment: dict[str, str]) -> None:
    """Refuse at synth what Lambda would refuse at deploy, in one line that says what to do."""
    size = sum(len(name.encode()) + len(TOKEN.sub("x" * TOKEN_BYTES, value).encode())
               for name, value in environment.items())
    if size > LAMBDA_ENV_BYTES:
        raise ConfigurationError(
            "databases", f"the {function} function's environment would take {size} bytes, "
            f"over the {LAMBDA_ENV_BYTES} Lambda allows (most of it the databases' secrets, "
            "checks and restore targets)", "use secret names rather than complete ARNs, "
            "shorter checks, or split the databases across stacks")


def log_retention(days: int) -> logs.RetentionDays:
    """The CloudWatch retention enum for a number of days the config already validated."""
    return logs.RetentionDays[RETENTION[days]]
