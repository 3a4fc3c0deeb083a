"""Where backups live: the backup bucket, its KMS key, its access-log bucket.

Retention is enforced here, by lifecycle rules on the key prefixes the library writes
(``<prefix>/<retention>/<database>/...``). The bucket and the key are the stateful heart of the
system: their logical IDs are pinned (see ``LOGICAL_IDS``, and a test) so that no refactor of
the construct tree ever replaces them, and they are retained when the stack is deleted.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import BackstopConfig
from infra.storage_config import RETENTION_CLASSES

# Logical IDs of the stateful resources. Changing one replaces the resource: never do it.
LOGICAL_IDS = {"bucket": "BackupBucket", "key": "BackupKey", "access_logs": "AccessLogBucket",
               "signing_key": "ManifestSigningKey"}
SIGNING_ENV = "BACKSTOP_SIGNING_KMS_KEY"  # read by backstop.signing


class Storage(Construct):
    """The backup bucket with encryption, versioning, lifecycle retention and access logs."""

    def __init__(self, scope: Construct, id_: str, *, config: BackstopConfig) -> None:
        super().__init__(scope, id_)
        self.prefix = config.prefix

        self.key = kms.Key(
            self, "Key", description="Backstop backup bucket encryption",
            enable_key_rotation=True, removal_policy=cdk.RemovalPolicy.RETAIN)
        _pin(self.key, LOGICAL_IDS["key"])
        # Manifests are signed with an HMAC key that never leaves KMS (backstop.signing):
        # whoever can write to the bucket still cannot forge one.
        self.signing_key = kms.Key(
            self, "SigningKey", description="Backstop manifest signatures (HMAC)",
            key_spec=kms.KeySpec.HMAC_256, key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=cdk.RemovalPolicy.RETAIN)
        _pin(self.signing_key, LOGICAL_IDS["signing_key"])

        self.access_logs = s3.Bucket(
            self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs",
                                              expiration=cdk.Duration.days(365))])
        _pin(self.access_logs, LOGICAL_IDS["access_logs"])

        lock = config.object_lock
        replication = None
        if config.replication is not None:
            replication = [s3.ReplicationRule(
                id="replicate-backups", priority=1,
                destination=s3.Bucket.from_bucket_arn(
                    self, "ReplicaBucket", config.replication.destination_bucket_arn),
                kms_key=kms.Key.from_key_arn(
                    self, "ReplicaKey", config.replication.destination_kms_key_arn),
                sse_kms_encrypted_objects=True, delete_marker_replication=False)]

        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.KMS, encryption_key=self.key, bucket_key_enabled=True,
            versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs, server_access_logs_prefix="backup-bucket/",
            lifecycle_rules=lifecycle_rules(config),
            object_lock_enabled=lock is not None or None,
            object_lock_default_retention=(
                None if lock is None else
                s3.ObjectLockRetention.governance(cdk.Duration.days(lock.days))
                if lock.mode == "GOVERNANCE" else
                s3.ObjectLockRetention.compliance(cdk.Duration.days(lock.days))),
            replication_rules=replication,
            removal_policy=cdk.RemovalPolicy.RETAIN)
        _pin(self.bucket, LOGICAL_IDS["bucket"])
        self._deny_other_encryption()

    def _deny_other_encryption(self) -> None:
        """Every object is encrypted with the bucket's key: a writer may rely on the default
        or name SSE-KMS with this key, never another type (SSE-S3, DSSE-KMS, SSE-C) or key."""
        conditions: list[dict[str, Any]] = [
            {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            {"StringNotEqualsIfExists": {
                "s3:x-amz-server-side-encryption-aws-kms-key-id": self.key.key_arn}},
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}]
        for i, condition in enumerate(conditions):
            self.bucket.add_to_resource_policy(iam.PolicyStatement(
                sid=f"DenyOtherEncryption{i}", effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()], actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")], conditions=condition))

    def location(self) -> str:
        """The store location the library opens: ``s3://<bucket>/<prefix>``."""
        return f"s3://{self.bucket.bucket_name}/{self.prefix}"

    def objects_arn(self) -> str:
        return self.bucket.arn_for_objects(f"{self.prefix}/*")

    def store_env(self) -> dict[str, str]:
        """What a function needs to open the store: where it is and its signing key."""
        return {"BACKUP_LOCATION": self.location(), SIGNING_ENV: self.signing_key.key_arn}

    def grant_write_backups(self, grantee: iam.IGrantable) -> None:
        """Write dumps and manifests (multipart uploads included) and read the catalog."""
        self._grant(grantee, ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"],
                    ["kms:GenerateDataKey", "kms:Decrypt"])
        self.signing_key.grant(grantee, "kms:GenerateMac", "kms:VerifyMac")

    def grant_write_index(self, grantee: iam.IGrantable) -> None:
        """Write the per-database index objects (``<prefix>/index/``), nothing else."""
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"],
                                   resource_arns=[self.bucket.arn_for_objects(
                                       f"{self.prefix}/index/*")])
        self.key.grant(grantee, "kms:GenerateDataKey")

    def grant_read_backups(self, grantee: iam.IGrantable) -> None:
        self._grant(grantee, ["s3:GetObject"], ["kms:Decrypt"])
        self.signing_key.grant(grantee, "kms:VerifyMac")

    def _grant(self, grantee: iam.IGrantable, object_actions: list[str],
               key_actions: list[str]) -> None:
        iam.Grant.add_to_principal(grantee=grantee, actions=object_actions,
                                   resource_arns=[self.objects_arn()])
        # Unconditional: S3 answers a GET of a missing key (a new database's index, an unknown
        # backup id) with 404 only to a caller that may list the bucket, else 403; it decides
        # in the GET's request context, which has no s3:prefix, so a grant conditioned on the
        # prefix would not count. The bucket is the stack's own: its keys are Backstop's.
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:ListBucket"],
                                   resource_arns=[self.bucket.bucket_arn])
        self.key.grant(grantee, *key_actions)


def lifecycle_rules(config: BackstopConfig) -> list[s3.LifecycleRule]:
    """One expiry rule per expiring retention class, plus bucket-wide hygiene."""
    noncurrent = cdk.Duration.days(config.retention.noncurrent_versions)
    rules = [s3.LifecycleRule(
        id="hygiene", abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        noncurrent_version_expiration=noncurrent, expired_object_delete_marker=True)]
    for retention_class in RETENTION_CLASSES:
        days = config.retention.days(retention_class)
        if days is not None:
            rules.append(s3.LifecycleRule(
                id=f"expire-{retention_class}", prefix=f"{config.prefix}/{retention_class}/",
                expiration=cdk.Duration.days(days)))
    return rules


def _pin(resource: Construct, logical_id: str) -> None:
    child = resource.node.default_child
    assert isinstance(child, cdk.CfnResource)
    child.override_logical_id(logical_id)
