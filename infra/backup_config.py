"""The backup side of the configuration: the Fargate task for backups that outgrow the
function, how many databases one schedule backs up at once, and the RPO a schedule can meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config_values import ConfigurationError, int_setting
from infra.restore_config import FARGATE_CPU

# Hours between two backups of each scheduled class.
INTERVAL_HOURS = {"daily": 24, "weekly": 24 * 7, "monthly": 24 * 31}
# Scheduled starts, the runner's start and the 15-minute check interval fit in this margin.
RPO_MARGIN_HOURS = 1


@dataclass(frozen=True)
class BackupContainer:
    cpu: int = 1024
    memory_mb: int = 4096
    ephemeral_storage_gb: int = 21  # the dump streams; only gpg's keyring touches disk
    timeout_hours: int = 3


def parse_backup_container(value: Any) -> BackupContainer:
    names = ("cpu", "memory_mb", "ephemeral_storage_gb", "timeout_hours")
    value = {} if value is None else value
    if not isinstance(value, dict) or set(value) - set(names):
        raise ConfigurationError("backup_container", f"{value!r} is not a container setting",
                                 f"use an object with {', '.join(names)}")
    defaults = BackupContainer()
    cpu = value.get("cpu", defaults.cpu)
    if cpu not in FARGATE_CPU:
        raise ConfigurationError("backup_container.cpu", f"{cpu!r} is not a Fargate CPU size",
                                 f"use one of {FARGATE_CPU}")
    key = "backup_container."
    return BackupContainer(
        cpu=cpu,
        memory_mb=int_setting(value, "memory_mb", defaults.memory_mb, 2 * cpu,
                              min(8 * cpu, 122880), key),
        ephemeral_storage_gb=int_setting(value, "ephemeral_storage_gb",
                                         defaults.ephemeral_storage_gb, 21, 200, key),
        timeout_hours=int_setting(value, "timeout_hours", defaults.timeout_hours, 1, 24, key))


def check_rpo(rpo_hours: int, schedules: dict[str, tuple[str, ...]],
              longest_backup_hours: int) -> None:
    """Every database's schedule must be able to meet the RPO.

    The age is measured from the newest good full backup's snapshot, but a backup only counts
    once it has finished: just before the next one finishes, the age is the interval between
    backups plus that backup's run time. So the RPO must cover the database's shortest
    interval, the longest a backup may run (the Fargate task's limit) and a margin; an RPO equal
    to the interval would page every night a backup started a minute later than the last."""
    for database, classes in schedules.items():
        if not classes:
            continue
        interval = min(INTERVAL_HOURS[c] for c in classes)
        needed = interval + longest_backup_hours + RPO_MARGIN_HOURS
        if rpo_hours < needed:
            raise ConfigurationError(
                "rpo_hours", f"{rpo_hours} h cannot be met by {database}'s schedule "
                f"({', '.join(classes)}: a backup every {interval} h that may run "
                f"{longest_backup_hours} h)",
                f"raise rpo_hours to at least {needed} or back it up more often")


def parse_concurrency(value: Any) -> int:
    value = 4 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ConfigurationError("backup_concurrency", f"{value!r} is out of range",
                                 "use a whole number from 1 to 1000: how many databases one "
                                 "schedule backs up at once")
    return value
