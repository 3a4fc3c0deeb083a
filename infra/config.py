"""The one typed, validated configuration of a Backstop deployment.

Values come from CDK context: defaults in ``cdk.json`` under ``backstop:<key>``, a deployment's
own JSON file named by ``backstop:config_file`` (its keys override the defaults), and ``-c
backstop:<key>=<json>`` on the command line. Every error names the key and says how to fix it,
so a wrong value fails ``cdk synth`` before anything reaches AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.backup_config import (
    BackupContainer,
    check_rpo,
    parse_backup_container,
    parse_concurrency,
)
from infra.config_values import (
    PREFIX,
    ConfigurationError,
    choice_setting,
    int_setting,
    optional_str_setting,
    str_list_setting,
)
from infra.database_config import Database, parse_databases
from infra.fleet_limits import check_fleet_size
from infra.report_config import Report, parse_report
from infra.restore_config import Restore, parse_restore
from infra.storage_config import (
    ObjectLock,
    Replication,
    Retention,
    parse_object_lock,
    parse_replication,
    parse_retention,
)

ARCHITECTURES = ("arm64", "x86_64")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ARMOR = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
# SSM parameter value limits (bytes): standard tier 4 KB, advanced tier 8 KB.
SSM_STANDARD_MAX = 4096
SSM_ADVANCED_MAX = 8192


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    # how functions and tasks in these subnets reach AWS APIs: "endpoints" (the stack creates
    # VPC endpoints) or "nat" (the subnets already route to a NAT gateway)
    egress: str = "endpoints"
    route_table_ids: tuple[str, ...] = ()  # one per subnet: where the S3 gateway endpoint goes


@dataclass(frozen=True)
class BackupFunction:
    timeout_seconds: int = 900
    memory_mb: int = 2048
    ephemeral_storage_mb: int = 512


@dataclass(frozen=True)
class BackstopConfig:
    databases: tuple[Database, ...]
    recipients: tuple[str, ...]  # armored OpenPGP public keys
    stack_name: str = "Backstop"
    account: str | None = None
    region: str | None = None
    architecture: str = "arm64"
    prefix: str = "backstop"
    retention: Retention = field(default_factory=Retention)
    object_lock: ObjectLock | None = None
    replication: Replication | None = None
    rpo_hours: int = 28
    rto_minutes: int = 60
    collapsed_fraction: float = 0.5
    backup_function: BackupFunction = BackupFunction()
    backup_container: BackupContainer = field(default_factory=BackupContainer)
    backup_concurrency: int = 4
    log_retention_days: int = 90
    alarm_emails: tuple[str, ...] = ()
    network: Network | None = None
    postgres_version: str = "18.1"
    tags: Mapping[str, str] = field(default_factory=dict)
    restore: Restore = field(default_factory=Restore)
    report: Report = field(default_factory=Report)

    def database_secrets(self) -> dict[str, str]:
        return {db.name: db.secret for db in self.databases}

    def database_checks(self) -> dict[str, dict[str, str]]:
        return {db.name: dict(db.checks) for db in self.databases if db.checks}

    def database_profiles(self) -> dict[str, str]:
        return {db.name: db.profile for db in self.databases if db.profile != "plain"}


# --------------------------------------------------------------------------- loading

KEYS = ("databases", "recipients", "stack_name", "account", "region", "architecture", "prefix",
        "retention_days", "object_lock", "replication", "rpo_hours", "rto_minutes",
        "collapsed_fraction", "backup_function", "log_retention_days", "alarm_emails", "network",
        "postgres_version", "tags", "restore", "backup_container", "backup_concurrency",
        "report")

NUMERIC_KEYS = ("rpo_hours", "rto_minutes", "collapsed_fraction", "log_retention_days")


def raw_from_context(get: Any, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Collect ``backstop:*`` context values (``get`` is ``node.try_get_context``).

    A value given with ``-c`` arrives as a string; JSON-looking strings are decoded so that
    ``-c backstop:rpo_hours=12`` and ``-c backstop:alarm_emails='["a@b.c"]'`` both work.
    """
    raw: dict[str, Any] = {}
    for key in KEYS:
        value = get(PREFIX + key)
        if value is not None:
            raw[key] = _decode(key, value)
    config_file = get(PREFIX + "config_file")
    if config_file:
        path = Path(config_file)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            overrides = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError("config_file", f"cannot read {path} ({exc})",
                                     "give the path of a JSON object of backstop keys") from exc
        if not isinstance(overrides, dict):
            raise ConfigurationError("config_file", f"{path} is not a JSON object",
                                     'write {"databases": [...], "recipients": [...]}')
        for key, value in overrides.items():
            key = key.removeprefix(PREFIX)
            if key not in KEYS:
                raise ConfigurationError(key, f"unknown key in {path}",
                                         f"use one of {', '.join(KEYS)}")
            raw[key] = value
    return raw


def _decode(key: str, value: Any) -> Any:
    if isinstance(value, str) and (value[:1] in ("[", "{") or value in ("null", "true", "false")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(key, f"is not valid JSON ({exc.msg})",
                                     "quote the whole JSON value on the command line") from exc
    if key in NUMERIC_KEYS and isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return json.loads(value)
    return value


def load_config(raw: Mapping[str, Any], *, base_dir: Path | None = None) -> BackstopConfig:
    """Validate raw context values into a BackstopConfig; raise ConfigurationError on the first
    wrong value."""
    unknown = set(raw) - set(KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigurationError(key, "is not a Backstop setting", f"use one of {', '.join(KEYS)}")

    databases = parse_databases(raw.get("databases"))
    recipients = _recipients(raw.get("recipients"), base_dir)
    architecture = choice_setting(raw, "architecture", ARCHITECTURES, "arm64")
    retention = parse_retention(raw.get("retention_days"))
    rpo = int_setting(raw, "rpo_hours", 28, 1, 24 * 40)
    rto = int_setting(raw, "rto_minutes", 60, 1, 24 * 60)
    fraction = raw.get("collapsed_fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise ConfigurationError("collapsed_fraction", f"{fraction!r} is not between 0 and 1",
                                 "use e.g. 0.5 to flag a backup under half the previous size")
    log_days = int_setting(raw, "log_retention_days", 90, 1, 3653)
    if log_days not in LOG_RETENTION_DAYS:
        raise ConfigurationError("log_retention_days", f"{log_days} is not a CloudWatch value",
                                 f"use one of {LOG_RETENTION_DAYS}")
    emails = str_list_setting(raw, "alarm_emails")
    for email in emails:
        if not _EMAIL.match(email):
            raise ConfigurationError("alarm_emails", f"{email!r} is not an e-mail address",
                                     "list addresses like oncall@example.com")
    prefix = raw.get("prefix", "backstop")
    if not isinstance(prefix, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", prefix):
        raise ConfigurationError("prefix", f"{prefix!r} is not a simple key prefix",
                                 "use lowercase letters, digits and dashes, e.g. 'backstop'")
    stack_name = raw.get("stack_name", "Backstop")
    if not isinstance(stack_name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}",
                                                           stack_name):
        raise ConfigurationError("stack_name", f"{stack_name!r} is not a stack name",
                                 "use letters, digits and dashes, starting with a letter")
    account = optional_str_setting(raw, "account", r"\d{12}", "a 12-digit account id")
    region = optional_str_setting(raw, "region", r"[a-z]{2}(-[a-z]+)+-\d",
                                  "a region like eu-west-1")
    postgres_version = raw.get("postgres_version", "18.1")
    if not isinstance(postgres_version, str) or not re.fullmatch(r"\d{2}\.\d+", postgres_version):
        raise ConfigurationError("postgres_version", f"{postgres_version!r} is not a release",
                                 "use a PostgreSQL release like '18.1' (major.minor)")
    tags = raw.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ConfigurationError("tags", "must map tag names to strings", 'use {"team": "db"}')

    config = BackstopConfig(
        databases=databases, recipients=recipients, stack_name=stack_name, account=account,
        region=region, architecture=architecture, prefix=prefix, retention=retention,
        object_lock=parse_object_lock(raw.get("object_lock")),
        replication=parse_replication(raw.get("replication")), rpo_hours=rpo, rto_minutes=rto,
        collapsed_fraction=float(fraction), backup_function=_backup_function(raw),
        log_retention_days=log_days, alarm_emails=emails, network=_network(raw.get("network")),
        postgres_version=postgres_version, tags=dict(tags),
        restore=parse_restore(raw.get("restore")),
        backup_container=parse_backup_container(raw.get("backup_container")),
        backup_concurrency=parse_concurrency(raw.get("backup_concurrency")),
        report=parse_report(raw.get("report"), tuple(db.name for db in databases)))
    check_rpo(config.rpo_hours, {db.name: db.schedules for db in config.databases
                                 if db.scope.mode == "full" and not db.scope.tables},
              config.backup_container.timeout_hours)
    if config.network is not None and len(set(config.network.availability_zones)) < 2:
        raise ConfigurationError("network.subnet_ids", "scratch RDS instances for restore "
                                 "verification need subnets in at least two availability zones",
                                 "list private subnets of two zones (an RDS DB subnet group "
                                 "needs two)")
    check_fleet_size(len(config.databases), alarm_emails=len(config.alarm_emails),
                     pitr_sources=len(config.report.rds()))
    return config


def _recipients(value: Any, base_dir: Path | None) -> tuple[str, ...]:
    fix = "list armored OpenPGP public keys, or 'file:path/to/key.asc'"
    if not isinstance(value, list) or not value:
        raise ConfigurationError("recipients", "no recipient public key is configured; backups "
                                 "are encrypted to these keys", fix)
    if len(value) > 10:
        raise ConfigurationError("recipients", f"{len(value)} keys given, at most 10 allowed",
                                 "encrypt to at most 10 recipients (one SSM GetParameters call)")
    keys = []
    for i, item in enumerate(value):
        key = f"recipients[{i}]"
        if not isinstance(item, str):
            raise ConfigurationError(key, "is not a string", fix)
        if item.startswith("file:"):
            path = Path(item.removeprefix("file:"))
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                item = path.read_text()
            except OSError as exc:
                raise ConfigurationError(key, f"cannot read {path} ({exc.strerror})", fix) from exc
        item = item.strip()
        if not item.startswith(_ARMOR):
            raise ConfigurationError(key, "is not an armored OpenPGP public key", fix
                                     + " (export with: gpg --armor --export <fingerprint>)")
        if len(item.encode()) > SSM_ADVANCED_MAX:
            raise ConfigurationError(key, "is larger than 8 KB (the SSM parameter limit)",
                                     "export the key without extra signatures: "
                                     "gpg --armor --export-options export-minimal --export")
        keys.append(item + "\n")
    return tuple(keys)


def _backup_function(raw: Mapping[str, Any]) -> BackupFunction:
    value = raw.get("backup_function", {})
    if not isinstance(value, dict):
        raise ConfigurationError("backup_function", "is not an object",
                                 '{"timeout_seconds": 900, "memory_mb": 2048, '
                                 '"ephemeral_storage_mb": 512}')
    for name in value:
        if name not in ("timeout_seconds", "memory_mb", "ephemeral_storage_mb"):
            raise ConfigurationError(f"backup_function.{name}", "is not a setting",
                                     "use timeout_seconds, memory_mb, ephemeral_storage_mb")
    return BackupFunction(
        # a minute is kept back to stop the dump cleanly (handlers.backup)
        timeout_seconds=int_setting(value, "timeout_seconds", 900, 180, 900, "backup_function.",
                                    " (Lambda's limit is 15 minutes; larger dumps run on the "
                                    "Fargate task)"),
        memory_mb=int_setting(value, "memory_mb", 2048, 128, 10240, "backup_function."),
        ephemeral_storage_mb=int_setting(value, "ephemeral_storage_mb", 512, 512, 10240,
                                  "backup_function."))


def _network(value: Any) -> Network | None:
    if value is None:
        return None
    fix = ('use {"vpc_id": "vpc-...", "subnet_ids": [...], "availability_zones": [...], '
           '"security_group_ids": [...]} or null for public endpoints')
    if not isinstance(value, dict):
        raise ConfigurationError("network", "is not an object", fix)
    vpc_id = value.get("vpc_id")
    if not isinstance(vpc_id, str) or not re.fullmatch(r"vpc-[0-9a-f]{8,17}", vpc_id):
        raise ConfigurationError("network.vpc_id", f"{vpc_id!r} is not a VPC id", fix)
    lists = {}
    for name, pattern in (("subnet_ids", r"subnet-[0-9a-f]{8,17}"),
                          ("availability_zones", r"[a-z]{2}(-[a-z]+)+-\d[a-z]"),
                          ("security_group_ids", r"sg-[0-9a-f]{8,17}")):
        items = value.get(name)
        if not isinstance(items, list) or not items or not all(
                isinstance(i, str) and re.fullmatch(pattern, i) for i in items):
            raise ConfigurationError(f"network.{name}", f"{items!r} is not a list of ids", fix)
        lists[name] = tuple(items)
    egress = value.get("egress")
    if egress not in ("endpoints", "nat"):
        raise ConfigurationError(
            "network.egress", f"{egress!r} is not how these subnets reach AWS",
            'say "endpoints" (the stack creates VPC endpoints for S3, Secrets Manager, SSM, '
            'Step Functions, ECR and CloudWatch Logs) or "nat" (the subnets already route to a '
            "NAT gateway); without either, nothing in them reaches AWS")
    if len(lists["availability_zones"]) != len(lists["subnet_ids"]):
        raise ConfigurationError("network.availability_zones",
                                 "must name one zone per subnet, in the same order", fix)
    routes = value.get("route_table_ids", [])
    if not isinstance(routes, list) or not all(
            isinstance(r, str) and re.fullmatch(r"rtb-[0-9a-f]{8,17}", r) for r in routes):
        raise ConfigurationError("network.route_table_ids", f"{routes!r} is not a list of ids",
                                 "list each subnet's route table, rtb-...")
    if egress == "endpoints" and len(routes) != len(lists["subnet_ids"]):
        raise ConfigurationError("network.route_table_ids",
                                 "must name one route table per subnet, in the same order",
                                 "the S3 gateway endpoint is added to these route tables")
    return Network(vpc_id=vpc_id, subnet_ids=lists["subnet_ids"],
                   availability_zones=lists["availability_zones"],
                   security_group_ids=lists["security_group_ids"], egress=egress,
                   route_table_ids=tuple(routes))
