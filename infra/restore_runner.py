"""The restore as a Fargate task, for backups the restore function cannot take.

A restore function has at most 15 minutes and 10 GB of /tmp. ``backstop.restore.runner_for``
decides from the manifest's plain dump size and the measured restore throughput; a restore
that does not fit runs the same code (``python -m handlers.task``) in this task, with up to
200 GB of ephemeral storage for the staged dump (a larger one is streamed into a single-job
pg_restore) and hours of time. The image holds the library, its Python dependencies and the
PostgreSQL client tools and gpg built exactly as the Lambda layer builds them; it is built by
``cdk deploy`` (Docker), never during synth.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import BackstopConfig
from infra.functions import METRICS_NAMESPACE, ROOT, SERVICE_NAME, Placement, log_retention

DOCKERFILE = "containers/restore/Dockerfile"
ENTRY_POINT = ["python3", "-m", "handlers.task"]
# The build context is the repository; only these folders go into it.
CONTEXT = ["*", "!functions", "!layers", "!containers", "**/__pycache__", "**/*.pyc",
           "**/*.egg-info", "layers/python-deps/build"]


class ContainerRunner(Construct):
    """ECS cluster, task definition and container of the large-restore task."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig,
                 placement: Placement, environment: dict[str, str]) -> None:
        super().__init__(scope, id_)
        arm = config.architecture == "arm64"
        sizes = config.restore.container
        self.placement = placement
        self.cluster = ecs.Cluster(self, "Cluster", vpc=placement.vpc,
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
            "Restore", image=image, entry_point=ENTRY_POINT, essential=True,
            environment={"POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                         "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                         # no X-Ray daemon beside the task: the restore logs, it does not trace
                         "POWERTOOLS_TRACE_DISABLED": "true", **environment},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="restore", log_group=self.log_group))
        self.task_role = self.task_definition.task_role
