"""Configuration: defaults from cdk.json load, and every bad value names its key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_config, raw_from_context
from infra.config_values import ConfigurationError
from tests.infra.conftest import cdk_json_context, raw_config


def test_cdk_json_defaults_load(recipient_key: str) -> None:
    config = load_config(raw_config(recipient_key))
    (db,) = config.databases
    assert (db.name, db.secret, db.schedules) == ("quotepro", "backstop/quotepro",
                                                  ("daily", "weekly", "monthly"))
    assert (config.rpo_hours, config.rto_minutes, config.collapsed_fraction) == (28, 60, 0.5)
    assert config.retention.days("daily") == 7 and config.retention.days("manual") is None
    assert config.retention.days("pre-migration") is None
    assert config.architecture == "arm64" and config.network is None


def test_missing_recipients_fail_with_the_key_and_the_fix() -> None:
    raw = {k.removeprefix("backstop:"): v for k, v in cdk_json_context().items()
           if k.startswith("backstop:")}
    with pytest.raises(ConfigurationError) as info:
        load_config(raw)
    assert str(info.value).startswith("backstop:recipients: no recipient public key")
    assert "armored OpenPGP public keys" in str(info.value)


@pytest.mark.parametrize(("overrides", "key"), [
    ({"databases": []}, "backstop:databases:"),
    ({"databases": [{"name": "Quote Pro", "secret": "s"}]}, "backstop:databases[0].name:"),
    ({"databases": [{"name": "a", "secret": "arn:aws:s3:::x"}]}, "backstop:databases[0].secret:"),
    ({"databases": [{"name": "a", "secret": "s", "schedules": ["hourly"]}]},
     "backstop:databases[0].schedules:"),
    ({"databases": [{"name": "a", "secret": "s", "scope": {"mode": "everything"}}]},
     "backstop:databases[0].scope.mode:"),
    ({"databases": [{"name": "a", "secret": "s", "scope": {"tables": ["t"],
                                                           "exclude_tables": ["u"]}}]},
     "backstop:databases[0].scope.exclude_tables:"),
    ({"databases": [{"name": "a", "secret": "s", "checks": {"Bad Name": "SELECT 1"}}]},
     "backstop:databases[0].checks.Bad Name:"),
    ({"databases": [{"name": "a", "secret": "s", "checks": {"empty": " "}}]},
     "backstop:databases[0].checks.empty:"),
    ({"databases": [{"name": "a", "secret": "s", "profile": "supa"}]},
     "backstop:databases[0].profile:"),
    ({"recipients": ["not a key"]}, "backstop:recipients[0]:"),
    ({"retention_days": {"daily": 0}}, "backstop:retention_days.daily:"),
    ({"retention_days": {"pre-migration": 5}}, "backstop:retention_days.pre-migration:"),
    ({"rpo_hours": 0}, "backstop:rpo_hours:"),
    ({"collapsed_fraction": 1.5}, "backstop:collapsed_fraction:"),
    ({"backup_function": {"timeout_seconds": 3600}}, "backstop:backup_function.timeout_seconds:"),
    ({"log_retention_days": 10}, "backstop:log_retention_days:"),
    ({"alarm_emails": ["oncall"]}, "backstop:alarm_emails:"),
    ({"architecture": "sparc"}, "backstop:architecture:"),
    ({"object_lock": {"mode": "STRICT", "days": 1}}, "backstop:object_lock.mode:"),
    ({"network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-01234567"],
                  "availability_zones": [], "security_group_ids": ["sg-01234567"]}},
     "backstop:network.availability_zones:"),
    ({"network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-01234567"],
                  "availability_zones": ["eu-west-1a"], "security_group_ids": ["sg-01234567"]}},
     "backstop:network.egress:"),
    ({"network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-01234567"],
                  "availability_zones": ["eu-west-1a"], "security_group_ids": ["sg-01234567"],
                  "egress": "endpoints"}}, "backstop:network.route_table_ids:"),
    ({"databases": [{"name": "a", "secret": "s", "runner": "ec2"}]},
     "backstop:databases[0].runner:"),
    ({"backup_container": {"cpu": 3}}, "backstop:backup_container.cpu:"),
    ({"backup_concurrency": 0}, "backstop:backup_concurrency:"),
    ({"replication": {"destination_bucket_arn": "bucket"}},
     "backstop:replication.destination_bucket_arn:"),
    ({"postgres_version": "latest"}, "backstop:postgres_version:"),
    ({"colour": "blue"}, "backstop:colour:"),
])
def test_bad_value_names_its_key(recipient_key: str, overrides: dict[str, Any],
                                 key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config(raw_config(recipient_key, **overrides))
    message = str(info.value)
    assert message.startswith(key), message
    assert "; " in message  # problem; fix
    assert "\n" not in message


def test_command_line_values_are_decoded(recipient_key: str) -> None:
    given = {"backstop:rpo_hours": "12", "backstop:alarm_emails": '["a@example.com"]',
             "backstop:postgres_version": "18.1", "backstop:object_lock": "null"}
    raw = raw_from_context(given.get)
    assert raw == {"rpo_hours": 12, "alarm_emails": ["a@example.com"],
                   "postgres_version": "18.1", "object_lock": None}


def test_a_config_file_overrides_context(tmp_path: Path, recipient_key: str) -> None:
    (tmp_path / "ops.asc").write_text(recipient_key)
    (tmp_path / "prod.json").write_text(json.dumps({
        "backstop:rpo_hours": 30, "recipients": ["file:ops.asc"],
        "databases": [{"name": "billing", "secret": "prod/billing"}]}))
    context = {**cdk_json_context(), "backstop:config_file": "prod.json"}
    config = load_config(raw_from_context(context.get, base_dir=tmp_path), base_dir=tmp_path)
    assert config.rpo_hours == 30
    assert [db.name for db in config.databases] == ["billing"]
    assert config.recipients == (recipient_key.strip() + "\n",)


def test_a_missing_config_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^backstop:config_file: cannot read"):
        raw_from_context({"backstop:config_file": "nope.json"}.get, base_dir=tmp_path)


def test_restore_defaults_load(recipient_key: str) -> None:
    restore = load_config(raw_config(recipient_key)).restore
    assert (restore.schedule, restore.instance_class, restore.private_key_secret) == (
        "daily", "db.t4g.micro", "backstop/verifier-key")
    assert (restore.keep_hours, restore.max_keep_hours, restore.verification_max_age_days) == (
        24, 72, 2)
    assert restore.function.ephemeral_storage_mb == 10240
    assert restore.container.ephemeral_storage_gb == 200


@pytest.mark.parametrize(("restore", "key"), [
    ({"schedule": "hourly"}, "backstop:restore.schedule:"),
    ({"instance_class": "t4g.micro"}, "backstop:restore.instance_class:"),
    ({"private_key_secret": "arn:aws:s3:::key"}, "backstop:restore.private_key_secret:"),
    ({"keep_hours": 100}, "backstop:restore.keep_hours:"),
    ({"instance_wait_minutes": 5}, "backstop:restore.instance_wait_minutes:"),
    ({"throughput_mb_s": 0}, "backstop:restore.throughput_mb_s:"),
    ({"function": {"timeout_seconds": 3600}}, "backstop:restore.function.timeout_seconds:"),
    ({"container": {"cpu": 3000}}, "backstop:restore.container.cpu:"),
    ({"container": {"cpu": 1024, "memory_mb": 16384}}, "backstop:restore.container.memory_mb:"),
    ({"target_secrets": ["arn:aws:s3:::x"]}, "backstop:restore.target_secrets:"),
    ({"verify": True}, "backstop:restore.verify:"),
])
def test_bad_restore_value_names_its_key(recipient_key: str, restore: dict[str, Any],
                                         key: str) -> None:
    raw = raw_config(recipient_key)
    with pytest.raises(ConfigurationError) as info:
        load_config({**raw, "restore": {**raw["restore"], **restore}})
    assert str(info.value).startswith(key), str(info.value)


def test_scratch_instances_need_a_network_of_two_zones(recipient_key: str) -> None:
    network = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"],
               "availability_zones": ["eu-west-1a"], "security_group_ids": ["sg-01234567"],
               "egress": "nat"}
    with pytest.raises(ConfigurationError, match=r"^backstop:network.subnet_ids: scratch RDS"):
        load_config(raw_config(recipient_key, network=network))


def test_the_stack_and_the_library_agree_on_classes_and_scopes() -> None:
    """Lifecycle rules are made per retention class: a class the library writes but the
    stack does not know would be kept forever."""
    from backstop import manifest
    from infra import database_config, storage_config

    assert storage_config.RETENTION_CLASSES == manifest.RETENTION_CLASSES
    assert database_config.SCOPE_MODES == manifest.SCOPE_MODES
