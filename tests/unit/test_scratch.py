"""The scratch-instance sweeper against moto's RDS: it deletes only Backstop's own scratch
instances, and only once they outlive their allowed hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from backstop import scratch
from backstop.manifest import DONE, Manifest, Scope


@pytest.fixture
def rds():
    with mock_aws():
        yield boto3.client("rds", region_name="us-east-1")


def create(rds, name: str, **tags: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, MasterUsername="postgres", ManageMasterUserPassword=True,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def names(rds) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def test_sweeper_deletes_only_old_tagged_scratch_instances(rds):
    create(rds, "backstop-scratch-old", **{scratch.SCRATCH_TAG: "true"})
    create(rds, "backstop-scratch-kept", **{scratch.SCRATCH_TAG: "true",
                                           scratch.KEEP_TAG: "48"})
    create(rds, "backstop-scratch-untagged")
    create(rds, "production-db", **{scratch.SCRATCH_TAG: "true"})
    later = datetime.now(UTC) + timedelta(hours=5)

    result = scratch.sweep(rds, now=later, default_keep_hours=3)

    assert result.deleted == ["backstop-scratch-old"]
    assert result.kept == ["backstop-scratch-kept"]
    assert 4.9 < result.oldest_age_hours < 5.1
    assert names(rds) == {"backstop-scratch-kept", "backstop-scratch-untagged", "production-db"}


def test_young_scratch_instances_survive(rds):
    create(rds, "backstop-scratch-new", **{scratch.SCRATCH_TAG: "true"})
    assert scratch.sweep(rds, now=datetime.now(UTC), default_keep_hours=3).deleted == []


def manifest(plain_size: int, version: str = "15.8") -> Manifest:
    now = datetime.now(UTC)
    return Manifest(id="x", database="db", retention="daily", reason="r", scope=Scope(),
                    status=DONE, started_at=now, finished_at=now, key="k",
                    source={"server_version": version}, dump={"plain_size": plain_size})


def test_instance_names_sizes_and_versions():
    name = scratch.instance_id("verify_2026-01-01T02:30:00Z_some-execution")
    assert name.startswith("backstop-scratch-") and len(name) <= 63 and "--" not in name
    assert name == scratch.instance_id("verify_2026-01-01T02:30:00Z_some-execution")
    assert scratch.storage_gb(manifest(1024**3)) == 20
    assert scratch.storage_gb(manifest(50 * 1024**3)) == 150
    assert scratch.engine_version(manifest(1, "15.8 (Debian 15.8-1)")) == "15"


def test_an_instance_rds_cannot_delete_yet_does_not_stop_the_sweep(rds, monkeypatch):
    create(rds, "backstop-scratch-busy", **{scratch.SCRATCH_TAG: "true"})
    create(rds, "backstop-scratch-done", **{scratch.SCRATCH_TAG: "true"})
    real_delete = rds.delete_db_instance

    def busy(DBInstanceIdentifier, **kwargs):
        if DBInstanceIdentifier == "backstop-scratch-busy":
            raise rds.exceptions.InvalidDBInstanceStateFault(
                {"Error": {"Code": "InvalidDBInstanceState", "Message": "creating"}},
                "DeleteDBInstance")
        return real_delete(DBInstanceIdentifier=DBInstanceIdentifier, **kwargs)

    monkeypatch.setattr(rds, "delete_db_instance", busy)
    result = scratch.sweep(rds, now=datetime.now(UTC) + timedelta(hours=5),
                           default_keep_hours=3)

    assert result.deleted == ["backstop-scratch-done"]
    assert result.kept == ["backstop-scratch-busy"]


def test_the_instance_of_a_stopped_execution_is_deleted_at_once(rds):
    name = scratch.instance_id("verify-123")
    create(rds, name, **{scratch.SCRATCH_TAG: "true"})
    create(rds, scratch.instance_id("verify-other"))  # not tagged: never Backstop's to delete

    assert scratch.delete_for_execution(rds, "verify-123") == name
    assert scratch.delete_for_execution(rds, "verify-other") is None
    assert scratch.delete_for_execution(rds, "never-ran") is None
    assert names(rds) == {scratch.instance_id("verify-other")}
