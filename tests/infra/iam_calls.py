"""Per role: which AWS calls in its code it makes (and so must be allowed), and why each other
call the static scan finds in its import closure is not reached by it.

``tests/infra/test_iam_derived.py`` fails when the code gains a call that is in neither list,
and when a granted call (or one of its dependent actions) is not allowed by the synthesized
role. The executed workflow tests record every call each handler really makes and fail when
one is not in ``granted`` (tests/support/moto_sfn.py, ``install_call_recorder``).
"""

from __future__ import annotations

import dataclasses

S3_READ = frozenset({"s3:GetObject", "s3:ListObjectsV2"})
S3_STREAM = frozenset({"s3:CreateMultipartUpload", "s3:UploadPart",
                       "s3:CompleteMultipartUpload", "s3:AbortMultipartUpload"})
S3_WRITE = S3_STREAM | {"s3:PutObject"}
ALL_S3 = S3_READ | S3_WRITE
SECRET = "secretsmanager:GetSecretValue"
RECIPIENTS = "ssm:GetParameters"
TOKEN = frozenset({"stepfunctions:SendTaskSuccess", "stepfunctions:SendTaskFailure"})
SWEEP = frozenset({"rds:DescribeDBInstances", "rds:DeleteDBInstance"})
SIGN, CHECK_SIGNATURE = "kms:GenerateMac", "kms:VerifyMac"  # manifest signatures: signing.py
BUCKET_CONFIGURATION = frozenset({"s3:GetBucketLifecycleConfiguration", "s3:GetBucketVersioning",
                                  "s3:GetBucketReplication", "s3:GetObjectLockConfiguration"})


@dataclasses.dataclass(frozen=True)
class Role:
    entry: str  # the handler module the role's code starts from
    granted: frozenset[str]
    unreached: dict[str, str]  # call -> why this role's code never makes it
    # call -> the configuration that makes the code call it, and the stack grant it then
    # (checked by the tests of that configuration, not against the default template)
    when_configured: dict[str, str] = dataclasses.field(default_factory=dict)
    # the configuration without which the role does not exist ("": every deployment has it)
    only_with: str = ""

    def may_call(self, call: str) -> bool:
        return call in self.granted or call in self.when_configured


def _each(calls: frozenset[str] | set[str], reason: str) -> dict[str, str]:
    return dict.fromkeys(calls, reason)


NO_STORE = "this role's handler opens no store"
READS_ONLY = "reads the store, never writes it"
NO_SECRET = "reads no secret (the shared runtime module reads them for other handlers)"
NO_RECIPIENTS = "encrypts nothing (the shared runtime module reads recipients for others)"
NOT_SWEEPER = "scratch.py's sweeper calls, reached only by the sweeper"
NOT_TASK = "only the Fargate tasks report with a task token"
NOT_SIGNING = "checks manifests' signatures, never signs one (it writes no manifest)"
NO_MANIFESTS = "reads no manifest, so checks no signature"
GPG = ("python-gnupg's list_keys, encrypt and decrypt, named like KMS operations; the only "
       "KMS client is signing.py's")
GPG_ENCRYPT = _each({"kms:ListKeys", "kms:Encrypt"}, GPG)
GPG_ALL = _each({"kms:ListKeys", "kms:Encrypt", "kms:Decrypt"}, GPG)

ROLES: dict[str, Role] = {
    "FunctionsValidateRole": Role("handlers.validate", frozenset({"s3:GetObject",
                                                                  CHECK_SIGNATURE}), {
        **_each(S3_WRITE, READS_ONLY), SIGN: NOT_SIGNING, **GPG_ENCRYPT,
        "s3:ListObjectsV2": "reads the database's one index object, never lists",
        SECRET: NO_SECRET, RECIPIENTS: NO_RECIPIENTS}),
    "FunctionsBackupRole": Role(
        "handlers.backup", S3_WRITE | {"s3:GetObject", SECRET, RECIPIENTS, SIGN,
                                       CHECK_SIGNATURE}, {
            "s3:ListObjectsV2": "a backup writes its object, manifest and index; it lists "
                                "nothing", **GPG_ENCRYPT}),
    "FunctionsCheckRole": Role("handlers.check", S3_READ | {CHECK_SIGNATURE}, {
        **_each(S3_WRITE, READS_ONLY), SECRET: NO_SECRET, RECIPIENTS: NO_RECIPIENTS,
        SIGN: NOT_SIGNING}),
    "FunctionsRpoCheckRole": Role(
        "handlers.rpo", S3_READ | {"s3:PutObject", CHECK_SIGNATURE}, {
            **_each(S3_STREAM, "the index is one small put, never a multipart upload"),
            SECRET: NO_SECRET, RECIPIENTS: NO_RECIPIENTS, SIGN: NOT_SIGNING}),
    "FunctionsRestorePlanRole": Role("handlers.plan", S3_READ | {SECRET, CHECK_SIGNATURE}, {
        **_each(S3_WRITE, "plans only: the object is checked by reading it"),
        RECIPIENTS: NO_RECIPIENTS, **_each(SWEEP, NOT_SWEEPER), SIGN: NOT_SIGNING,
        **GPG_ALL}),
    "FunctionsRestoreRole": Role(
        "handlers.restore", ALL_S3 | {SECRET, RECIPIENTS, SIGN, CHECK_SIGNATURE}, GPG_ALL),
    "FunctionsScratchSweeperRole": Role("handlers.sweep", SWEEP, {
        **_each(ALL_S3, NO_STORE), SECRET: NO_SECRET, RECIPIENTS: NO_RECIPIENTS,
        **_each({SIGN, CHECK_SIGNATURE}, NO_MANIFESTS)}),
    "BackupRunnerTaskTaskRole": Role(
        "handlers.task",
        S3_WRITE | TOKEN | {"s3:GetObject", SECRET, RECIPIENTS, SIGN, CHECK_SIGNATURE}, {
            "s3:ListObjectsV2": "the backup job lists nothing (listing is the restore "
                                "job's, which runs in the restore task)", **GPG_ALL}),
    "RestoreRunnerTaskTaskRole": Role(
        "handlers.task", ALL_S3 | TOKEN | {SECRET, RECIPIENTS, SIGN, CHECK_SIGNATURE},
        GPG_ALL),
    "FunctionsReportRole": Role(
        "handlers.report", S3_READ | BUCKET_CONFIGURATION | {
            "s3:PutObject", "s3:HeadObject", "s3:ListObjectVersions",
            "cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory", CHECK_SIGNATURE}, {
            **_each(S3_STREAM, "reports and acknowledgements are single small puts"),
            RECIPIENTS: NO_RECIPIENTS, SIGN: NOT_SIGNING}, {
            "rds:DescribeDBInstances": "report.pitr names RDS instances (granted on them)",
            SECRET: "report.pitr names a Supabase token secret (granted on it)"}),
    "FunctionsPitrWatchRole": Role("handlers.pitr", frozenset({"rds:DescribeDBInstances"}), {
        **_each(ALL_S3, NO_STORE), SECRET: NO_SECRET, RECIPIENTS: NO_RECIPIENTS,
        **_each({SIGN, CHECK_SIGNATURE}, NO_MANIFESTS)},
        only_with="an RDS source under report.pitr"),
}

# Dependent actions (AWS's service authorization data) a state machine does not need, and the
# parameters that would make it need them: the test checks those are absent from the task.
WAIVED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("rds:CreateDBInstance", "iam:PassRole"): (
        ("MonitoringRoleArn", "DomainIAMRoleName"),
        "only for enhanced monitoring or a directory role, which scratch instances do not use"),
    ("rds:CreateDBInstance", "kms:CreateGrant"): (
        ("KmsKeyId", "MasterUserSecretKmsKeyId"),
        "only for a customer managed key; scratch storage and the master secret use the AWS "
        "managed keys, whose key policies allow their use through RDS and Secrets Manager"),
    ("rds:CreateDBInstance", "kms:Decrypt"): (("KmsKeyId", "MasterUserSecretKmsKeyId"),
                                              "as kms:CreateGrant"),
    ("rds:CreateDBInstance", "kms:GenerateDataKey"): (("KmsKeyId", "MasterUserSecretKmsKeyId"),
                                                      "as kms:CreateGrant"),
    ("rds:CreateDBInstance", "rds:CreateTenantDatabase"): (
        ("MultiTenant",), "only for a multi-tenant (Oracle) instance"),
    ("rds:DeleteDBInstance", "rds:CreateDBSnapshot"): (
        ("FinalDBSnapshotIdentifier",), "SkipFinalSnapshot: no final snapshot is taken"),
    ("rds:DeleteDBInstance", "rds:AddTagsToResource"): (
        ("FinalDBSnapshotIdentifier",), "tags only a final snapshot, which is not taken"),
    ("rds:DeleteDBInstance", "rds:DeleteTenantDatabase"): (
        ("MultiTenant",), "single-tenant PostgreSQL instances have no tenant databases"),
}

# Needs that come from a call's parameters or its resource's configuration rather than from
# the action itself (RDS user guide, "Permissions required for Secrets Manager integration";
# S3 and SNS with SSE-KMS).
MANAGED_MASTER_PASSWORD = ("kms:DescribeKey", "secretsmanager:CreateSecret",
                           "secretsmanager:TagResource")
SSE_KMS_OBJECTS = {"s3:PutObject": ("kms:GenerateDataKey",),
                   "s3:CreateMultipartUpload": ("kms:GenerateDataKey", "kms:Decrypt"),
                   "s3:UploadPart": ("kms:GenerateDataKey", "kms:Decrypt"),
                   "s3:CompleteMultipartUpload": ("kms:GenerateDataKey", "kms:Decrypt"),
                   "s3:GetObject": ("kms:Decrypt",)}
ENCRYPTED_TOPIC = ("kms:GenerateDataKey", "kms:Decrypt")
