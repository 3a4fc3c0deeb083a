"""Backups and restores as Fargate tasks, for databases the functions cannot take.

A function has at most 15 minutes (and, for restores, 10 GB of /tmp). ``backstop.runners``
decides per database from its measured history; a run that does not fit runs the same code
(``python -m handlers.task``) in a task: the backup task streams like the function, with hours
of time; the restore task has up to 200 GB of ephemeral storage for the staged dump (a larger
one is streamed into a single-job pg_restore). Both use one image holding the library, its
Python dependencies and the PostgreSQL client tools and gpg built exactly as the Lambda layer
builds them; it is built by ``cdk deploy`` (Docker), never during synth. Each task has its own
definition and role, so a backup task cannot read the verifier's key and a restore task cannot
read a source database's secret unless granted.
"""

from __future__ import annotations

from typing import Protocol

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import BackstopConfig
from infra.functions import METRICS_NAMESPACE, ROOT, SERVICE_NAME, Placement, log_retention

DOCKERFILE = "containers/restore/Dockerfile"
ENTRY_POINT = ["python3", "-m", "handlers.task"]
# The build context is the repository; only these folders go into it.
CONTEXT = ["*", "!functions", "!layers", "!containers", "**/__pycache__", "**/*.pyc",
           "**/*.egg-info", "layers/python-deps/build"]


class Sizes(Protocol):
    @property
    def cpu(self) -> int: ...
    @property
    def memory_mb(self) -> int: ...
    @property
    def ephemeral_storage_gb(self) -> int: ...


class ContainerRunner(Construct):
    """Task definition and container of one kind of task (``name``: Backup or Restore), on a
    cluster shared by both."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig, name: str,
                 sizes: Sizes, placement: Placement, environment: dict[str, str],
                 cluster: ecs.ICluster | None = None) -> None:
        super().__init__(scope, id_)
        arm = config.architecture == "arm64"
        self.placement = placement
        self.cluster: ecs.ICluster = cluster or ecs.Cluster(
            self, "Cluster", vpc=placement.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task", cpu=sizes.cpu, memory_limit_mib=sizes.memory_mb,
            ephemeral_storage_gib=sizes.ephemeral_storage_gb,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX))
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention(
            config.log_retention_days), removal_policy=cdk.RemovalPolicy.DESTROY)
        image = ecs.ContainerImage.from_asset(
            str(ROOT), file=DOCKERFILE, exclude=CONTEXT, ignore_mode=cdk.IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
            build_args={"PG_VERSION": config.postgres_version})
        self.container = self.task_definition.add_container(
            name, image=image, entry_point=ENTRY_POINT, essential=True,
            environment={"POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                         "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                         # no X-Ray daemon beside the task: it logs, it does not trace
                         "POWERTOOLS_TRACE_DISABLED": "true", **environment},
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name.lower(),
                                            log_group=self.log_group))
        self.task_role = self.task_definition.task_role

    def run_task(self, scope: Construct, id_: str, *, input_path: str, result_path: str,
                 timeout: cdk.Duration) -> tasks.EcsRunTask:
        """A state that runs the task on the input at `input_path` and waits for the token
        the task sends back (handlers.task)."""
        return tasks.EcsRunTask(
            scope, id_, integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            cluster=self.cluster, task_definition=self.task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(
                platform_version=ecs.FargatePlatformVersion.LATEST),
            subnets=ec2.SubnetSelection(subnets=self.placement.subnets),
            security_groups=self.placement.security_groups, assign_public_ip=False,
            container_overrides=[tasks.ContainerOverride(
                container_definition=self.container, environment=[
                    tasks.TaskEnvironmentVariable(
                        name="BACKSTOP_TASK_INPUT",
                        value=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(input_path))),
                    tasks.TaskEnvironmentVariable(name="BACKSTOP_TASK_TOKEN",
                                                  value=sfn.JsonPath.task_token),
                    # the state's timeout runs from here, through the image pull and start
                    tasks.TaskEnvironmentVariable(
                        name="BACKSTOP_TASK_STARTED",
                        value=sfn.JsonPath.string_at("$$.State.EnteredTime"))])],
            result_path=result_path, task_timeout=sfn.Timeout.duration(timeout))
