"""The restore part of the configuration: verification schedule, scratch instances, the
verifier's key secret, and the sizes of the restore function and Fargate task."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infra.config_values import ConfigurationError, int_setting, is_secret_id


@dataclass(frozen=True)
class RestoreFunction:
    timeout_seconds: int = 900
    memory_mb: int = 2048
    ephemeral_storage_mb: int = 10240


@dataclass(frozen=True)
class RestoreContainer:
    cpu: int = 2048  # Fargate CPU units (1024 = 1 vCPU)
    memory_mb: int = 8192
    ephemeral_storage_gb: int = 200
    timeout_hours: int = 6


@dataclass(frozen=True)
class Restore:
    """Restore verification and manual restores into scratch RDS instances."""

    # the name (not the value) of the secret holding the verifier's armored private key
    private_key_secret: str = "backstop/verifier-key"  # noqa: S105
    schedule: str = "daily"  # daily (05:00 UTC), weekly (Sunday 05:00 UTC) or off
    instance_class: str = "db.t4g.micro"
    instance_wait_minutes: int = 45
    verification_max_age_days: int = 2
    keep_hours: int = 24
    max_keep_hours: int = 72
    throughput_mb_s: float = 20.0  # assumed restore speed until a verification measured one
    function: RestoreFunction = RestoreFunction()
    container: RestoreContainer = RestoreContainer()
    target_secrets: tuple[str, ...] = ()  # existing databases a manual restore may replace

    @property
    def secret_is_arn(self) -> bool:
        return self.private_key_secret.startswith("arn:")


RESTORE_SCHEDULES = ("daily", "weekly", "off")
FARGATE_CPU = (1024, 2048, 4096, 8192, 16384)
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")


def parse_restore(value: Any) -> Restore:
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ConfigurationError("restore", "is not an object",
                                 'use {"schedule": "daily", "instance_class": "db.t4g.micro"}')
    allowed = {"private_key_secret", "schedule", "instance_class", "instance_wait_minutes",
               "verification_max_age_days", "keep_hours", "max_keep_hours", "throughput_mb_s",
               "function", "container", "target_secrets"}
    for name in value:
        if name not in allowed:
            raise ConfigurationError(f"restore.{name}", "is not a restore setting",
                                     f"use {', '.join(sorted(allowed))}")
    defaults = Restore()
    secret = value.get("private_key_secret", defaults.private_key_secret)
    if not is_secret_id(secret):
        raise ConfigurationError("restore.private_key_secret",
                                 f"{secret!r} is not a secret name or ARN",
                                 "name the Secrets Manager secret that holds the verifier's "
                                 "armored private key")
    schedule = value.get("schedule", defaults.schedule)
    if schedule not in RESTORE_SCHEDULES:
        raise ConfigurationError("restore.schedule", f"{schedule!r} is not a schedule",
                                 f"use one of {', '.join(RESTORE_SCHEDULES)}")
    instance_class = value.get("instance_class", defaults.instance_class)
    if not isinstance(instance_class, str) or not _INSTANCE_CLASS.match(instance_class):
        raise ConfigurationError("restore.instance_class", f"{instance_class!r} is not an RDS "
                                 "instance class", "use e.g. db.t4g.micro")
    keep = int_setting(value, "keep_hours", defaults.keep_hours, 1, 720, "restore.")
    max_keep = int_setting(value, "max_keep_hours", defaults.max_keep_hours, 1, 720, "restore.")
    if keep > max_keep:
        raise ConfigurationError("restore.keep_hours", f"{keep} is above max_keep_hours "
                                 f"({max_keep})", "lower keep_hours or raise max_keep_hours")
    throughput = value.get("throughput_mb_s", defaults.throughput_mb_s)
    if isinstance(throughput, bool) or not isinstance(throughput, int | float) \
            or not 0.1 <= throughput <= 10000:
        raise ConfigurationError("restore.throughput_mb_s", f"{throughput!r} is out of range",
                                 "give the restore speed in MB/s that verification reports "
                                 "measure (throughput_mb_s), e.g. 20")
    targets = value.get("target_secrets", [])
    if not isinstance(targets, list) or not all(is_secret_id(t) for t in targets):
        raise ConfigurationError("restore.target_secrets", f"{targets!r} is not a list of "
                                 "secret names or ARNs", "list the secrets of databases a "
                                 "manual restore may replace (a role that may write)")
    return Restore(
        private_key_secret=secret, schedule=schedule, instance_class=instance_class,
        instance_wait_minutes=int_setting(value, "instance_wait_minutes",
                                   defaults.instance_wait_minutes, 10, 240, "restore."),
        # CloudWatch evaluates at most 7 days; the alarm reads an age, so any N works.
        verification_max_age_days=int_setting(value, "verification_max_age_days",
                                       defaults.verification_max_age_days, 1, 90, "restore."),
        keep_hours=keep, max_keep_hours=max_keep, throughput_mb_s=float(throughput),
        function=_restore_function(value.get("function", {})),
        container=_restore_container(value.get("container", {})),
        target_secrets=tuple(targets))


def _restore_function(value: Any) -> RestoreFunction:
    names = ("timeout_seconds", "memory_mb", "ephemeral_storage_mb")
    if not isinstance(value, dict) or set(value) - set(names):
        raise ConfigurationError("restore.function", f"{value!r} is not a function setting",
                                 f"use an object with {', '.join(names)}")
    key = "restore.function."
    return RestoreFunction(
        timeout_seconds=int_setting(value, "timeout_seconds", 900, 60, 900, key,
                             " (larger restores run as a Fargate task)"),
        memory_mb=int_setting(value, "memory_mb", 2048, 128, 10240, key),
        ephemeral_storage_mb=int_setting(value, "ephemeral_storage_mb", 10240, 512, 10240, key))


def _restore_container(value: Any) -> RestoreContainer:
    names = ("cpu", "memory_mb", "ephemeral_storage_gb", "timeout_hours")
    if not isinstance(value, dict) or set(value) - set(names):
        raise ConfigurationError("restore.container", f"{value!r} is not a container setting",
                                 f"use an object with {', '.join(names)}")
    cpu = value.get("cpu", 2048)
    if cpu not in FARGATE_CPU:
        raise ConfigurationError("restore.container.cpu", f"{cpu!r} is not a Fargate CPU size",
                                 f"use one of {FARGATE_CPU}")
    # Fargate allows 2 to 8 GB per vCPU (up to 120 GB); ECS rejects odd steps at deploy.
    memory = int_setting(value, "memory_mb", 8192, 2 * cpu, min(8 * cpu, 122880),
                  "restore.container.")
    return RestoreContainer(
        cpu=cpu, memory_mb=memory,
        ephemeral_storage_gb=int_setting(value, "ephemeral_storage_gb", 200, 21, 200,
                                  "restore.container."),
        timeout_hours=int_setting(value, "timeout_hours", 6, 1, 24, "restore.container."))
