"""The backup bucket: encryption, access, retention, and the IDs that must never change."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import resources


def _bucket(template: dict[str, Any]) -> dict[str, Any]:
    bucket: dict[str, Any] = template["Resources"]["BackupBucket"]
    return bucket


def test_stateful_resources_keep_their_logical_ids_and_are_retained(template: dict[str, Any]
                                                                    ) -> None:
    # Renaming any of these replaces the bucket or its key: every backup would be orphaned.
    assert template["Resources"]["BackupBucket"]["Type"] == "AWS::S3::Bucket"
    assert template["Resources"]["BackupKey"]["Type"] == "AWS::KMS::Key"
    assert template["Resources"]["AccessLogBucket"]["Type"] == "AWS::S3::Bucket"
    for logical_id in ("BackupBucket", "BackupKey", "AccessLogBucket"):
        resource = template["Resources"][logical_id]
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_bucket_is_encrypted_with_its_own_rotating_key(template: dict[str, Any]) -> None:
    (rule,) = _bucket(template)["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["BackupKey", "Arn"]}}
    assert template["Resources"]["BackupKey"]["Properties"]["EnableKeyRotation"] is True


def test_bucket_is_versioned_private_and_logged(template: dict[str, Any]) -> None:
    props = _bucket(template)["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    assert "ObjectLockEnabled" not in props  # off unless configured


def test_bucket_policy_denies_requests_without_tls(template: dict[str, Any]) -> None:
    (policy,) = [p for p in resources(template, "AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": "BackupBucket"}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny_plain = [s for s in statements if s["Effect"] == "Deny"
                  and s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"}]
    assert deny_plain and deny_plain[0]["Action"] == "s3:*"
    old_tls = [s for s in statements if s["Effect"] == "Deny"
               and "NumericLessThan" in s.get("Condition", {})]
    assert old_tls[0]["Condition"]["NumericLessThan"] == {"s3:TlsVersion": 1.2}


def test_lifecycle_expires_each_retention_class_by_prefix(template: dict[str, Any]) -> None:
    rules = {r["Id"]: r for r in _bucket(template)["Properties"]["LifecycleConfiguration"]["Rules"]}
    expiring = {rid: (r["Prefix"], r["ExpirationInDays"]) for rid, r in rules.items()
                if "ExpirationInDays" in r}
    # manual is null in cdk.json: kept, like pre-migration and pre-restore
    assert expiring == {"expire-daily": ("backstop/daily/", 7),
                        "expire-weekly": ("backstop/weekly/", 30),
                        "expire-monthly": ("backstop/monthly/", 365)}
    assert not any("pre-" in r.get("Prefix", "") for r in rules.values())
    hygiene = rules["hygiene"]
    assert "Prefix" not in hygiene
    assert hygiene["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert hygiene["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert all(r["Status"] == "Enabled" for r in rules.values())


def test_manual_retention_and_object_lock_come_from_config(synth_with: Any) -> None:
    template = synth_with(retention_days={"manual": 90, "daily": 3},
                          object_lock={"mode": "COMPLIANCE", "days": 3,
                                       "from_first_deploy": True})
    props = template["Resources"]["BackupBucket"]["Properties"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-manual"]["Prefix"] == "backstop/manual/"
    assert rules["expire-manual"]["ExpirationInDays"] == 90
    assert rules["expire-daily"]["ExpirationInDays"] == 3
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE", "Days": 3}


def test_replication_to_a_second_region_when_configured(synth_with: Any) -> None:
    template = synth_with(replication={
        "destination_bucket_arn": "arn:aws:s3:::backstop-replica",
        "destination_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234"})
    config = template["Resources"]["BackupBucket"]["Properties"]["ReplicationConfiguration"]
    (rule,) = config["Rules"]
    assert rule["Destination"]["Bucket"] == "arn:aws:s3:::backstop-replica"
    assert rule["Destination"]["EncryptionConfiguration"] == {
        "ReplicaKmsKeyID": "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234"}
    assert rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"] == {"Status": "Enabled"}


def test_object_lock_switched_on_later_is_refused_with_the_migration(recipient_key: str
                                                                     ) -> None:
    # Turning Object Lock on for a deployed stack would replace the retained bucket: every
    # backup in the old one orphaned. Synth refuses unless the lock is there from the start.
    import pytest

    from infra.config import load_config
    from infra.config_values import ConfigurationError
    from tests.infra.conftest import raw_config

    with pytest.raises(ConfigurationError) as refused:
        load_config(raw_config(recipient_key, object_lock={"mode": "GOVERNANCE", "days": 7}))
    message = str(refused.value)
    assert message.startswith("backstop:object_lock.from_first_deploy: is not true; ")
    assert "replaces the retained bucket" in message and "aws s3 sync" in message
    assert "\n" not in message


def test_bucket_policy_denies_every_other_encryption(template: dict[str, Any]) -> None:
    (policy,) = [p for p in resources(template, "AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": "BackupBucket"}]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
              if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"]
    conditions = [s["Condition"] for s in denies]
    assert {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}} \
        in conditions
    assert {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": {
        "Fn::GetAtt": ["BackupKey", "Arn"]}}} in conditions
    assert {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}} \
        in conditions
    for statement in denies:
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Resource"] == {"Fn::Join": ["", [
            {"Fn::GetAtt": ["BackupBucket", "Arn"]}, "/*"]]}
