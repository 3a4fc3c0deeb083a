"""A Supabase source in the cloud deployment: its configuration says `"profile": "supabase"`,
the synthesized backup workflow backs it up as the project's demoted `postgres` role, and the
restore-verification workflow restores that backup into a scratch instance as its master user
(no superuser), as every night. The Supabase-like database and the RDS-like server are those of
tests/supabase (PostgreSQL 18); AWS is moto's, running the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from backstop.catalog import choose
from backstop.signing import KmsKey, Policy
from backstop.store import open_store
from tests.conftest import server_directory
from tests.infra.conftest import SECRET_NAME
from tests.supabase.layout import Source, Target, build_source, build_target
from tests.supabase.servers import server_bin
from tests.support import moto_sfn

DB = "quotepro"
VERIFIER_SECRET = "backstop/verifier-key"


@pytest.fixture(scope="module")
def project() -> Iterator[tuple[Source, Target]]:
    source = build_source(server_directory("cloud-supabase"), server_bin(18))
    try:
        target = build_target(server_directory("cloud-rds"), server_bin(18))
    except BaseException:
        source.cluster.stop()
        raise
    try:
        yield source, target
    finally:
        source.cluster.stop()
        target.cluster.stop()


def test_a_supabase_source_backs_up_with_its_profile_and_verifies_on_rds(
        aws: Any, synth_with: Any, project: tuple[Source, Target], gpg_keys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source, rds = project
    template = synth_with(databases=[{
        "name": DB, "secret": SECRET_NAME, "profile": "supabase",
        "checks": {"users": "SELECT count(*) FROM auth.users"}}])
    postgres = source.postgres
    secrets = boto3.client("secretsmanager", region_name=moto_sfn.REGION)
    secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps({
        "host": postgres.host, "port": postgres.port, "username": postgres.user,
        "password": postgres.password, "dbname": postgres.dbname, "sslmode": "disable"}))
    secrets.create_secret(Name=VERIFIER_SECRET, SecretString=gpg_keys.private)
    deployment = moto_sfn.deploy(template)
    moto_sfn.install_fast_waits(monkeypatch)
    moto_sfn.install_fast_retries(monkeypatch)

    def create_database(name: str) -> None:  # as RDS creates the instance's database
        rds.database(name)

    def drop_database(name: str) -> None:
        with rds.cluster.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    server = moto_sfn.map_scratch_instances(monkeypatch, moto_sfn.ScratchServer(
        host=rds.master.host, port=rds.master.port, username=rds.master.user,
        password=str(rds.master.password), create_database=create_database,
        drop_database=drop_database))

    backup = moto_sfn.run(deployment.state_machine_arn, {
        "database": DB, "retention": "daily", "reason": "scheduled daily backup"})
    verification = moto_sfn.run(deployment.machine("RestoreVerification"),
                                {"database": DB, "backup_id": "latest"})

    assert backup.status == "SUCCEEDED", (backup.error, backup.cause)
    assert verification.status == "SUCCEEDED", (verification.error, verification.cause)
    signing = Policy(KmsKey(deployment.refs["ManifestSigningKey"],  # the stack's key
                            client=boto3.client("kms", region_name=moto_sfn.REGION)))
    store = open_store(f"s3://{deployment.bucket}/backstop", signing=signing,
                       s3_client=boto3.client("s3", region_name=moto_sfn.REGION))
    manifest = choose(store, backup.output["backup"]["id"])
    assert manifest.scope.profile == "supabase"  # from the database's configuration
    assert {t.schema for t in manifest.tables} == {"public", "auth", "storage"}
    report = manifest.verification
    assert report is not None and report["ok"], report
    assert {"auth.users", "auth.identities"} <= {t["table"] for t in report["tables"]}
    assert report["tables_matched"] == report["tables_checked"] == len(manifest.tables)
    assert "TRIGGER public quotes quote_accepted_webhook" in {
        s["entry"] for s in report["skipped"]}  # a Database Webhook: named, not silent
    assert server.created == server.deleted and len(server.created) == 1
    history = json.dumps([backup.events, verification.events], default=str)
    assert str(postgres.password) not in history and str(rds.master.password) not in history
