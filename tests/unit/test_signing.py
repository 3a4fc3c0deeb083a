"""Manifest signing and validation: one choke point (catalog.save / catalog.load)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from backstop import catalog, profiles
from backstop.errors import ConfigError, IntegrityError
from backstop.manifest import DONE, FAILED, Manifest, Scope, object_key
from backstop.signing import FileKey, KmsKey, Policy
from backstop.store import LocalStore

NOW = datetime(2026, 1, 31, 14, 0, tzinfo=UTC)


def manifest(n: int = 0, **fields: object) -> Manifest:
    backup_id = f"20260131T14000{n}Z-00000{n}"
    base = dict(id=backup_id, database="quotepro", retention="daily", reason="nightly",
                scope=Scope(), status=DONE, started_at=NOW.replace(second=n),
                finished_at=NOW.replace(second=n),
                key=object_key("daily", "quotepro", NOW, backup_id), size=10, sha256="a" * 64,
                snapshot={"id": "s", "taken_at": NOW.isoformat()},
                source={"server_version": "18.1"}, dump={"plain_size": 20},
                encryption={"recipients": ["A" * 40]})
    base.update(fields)
    return Manifest(**base)  # type: ignore[arg-type]


def key_file(tmp_path: Path, name: str = "k", text: str = "x" * 40) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", signing=Policy(FileKey(key_file(tmp_path))))


def rewrite(store: LocalStore, key: str, change) -> None:
    data = json.loads(store.get(key))
    change(data)
    store.put(key, json.dumps(data).encode())


def test_saved_manifests_are_signed_and_read_back_equal(store):
    m = manifest()
    catalog.save(store, m)
    assert json.loads(store.get(m.manifest_key))["signature"]["algorithm"] == "HMAC-SHA256"
    assert catalog.load(store, m.manifest_key) == m


def test_an_altered_manifest_is_refused_even_when_trusting_unsigned(store, tmp_path):
    m = manifest()
    catalog.save(store, m)
    rewrite(store, m.manifest_key, lambda d: d.update(sha256="b" * 64))
    with pytest.raises(IntegrityError, match="does not match its signature: it was altered"):
        catalog.load(store, m.manifest_key)
    trusting = LocalStore(store.root, signing=Policy(store.signing.signer, trust_unsigned=True))
    with pytest.raises(IntegrityError, match="altered"):
        catalog.load(trusting, m.manifest_key)


def test_unsigned_manifests_need_the_operators_word(store):
    m = manifest()
    catalog.save(store, m)
    rewrite(store, m.manifest_key, lambda d: d.pop("signature"))
    with pytest.raises(IntegrityError, match="is not signed.*--trust-unsigned"):
        catalog.load(store, m.manifest_key)
    trusting = LocalStore(store.root, signing=Policy(None, trust_unsigned=True))
    assert catalog.load(trusting, m.manifest_key) == m


def test_another_key_is_named(store, tmp_path):
    m = manifest()
    catalog.save(store, m)
    other = LocalStore(store.root, signing=Policy(FileKey(key_file(tmp_path, "o", "y" * 40))))
    with pytest.raises(IntegrityError, match="signed with another key"):
        catalog.load(other, m.manifest_key)
    with pytest.raises(ConfigError, match="no signing key is configured"):
        catalog.load(LocalStore(store.root, signing=Policy(None)), m.manifest_key)


def test_key_files_must_be_private_and_long(tmp_path):
    weak = key_file(tmp_path, "weak", "short")
    with pytest.raises(ConfigError, match="shorter than 32"):
        FileKey(weak)
    shared = key_file(tmp_path)
    shared.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users"):
        FileKey(shared)
    with pytest.raises(ConfigError, match="cannot read the signing key"):
        FileKey(tmp_path / "missing")


def test_no_key_means_no_backup_can_be_recorded(tmp_path):
    with pytest.raises(ConfigError, match="no manifest signing key is configured"):
        Policy(None).check_ready()


def test_kms_hmac_keys_sign_and_verify(tmp_path):
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"
                                )["KeyMetadata"]["Arn"]
        store = LocalStore(tmp_path, signing=Policy(KmsKey(key_id, client=kms)))
        m = manifest()
        catalog.save(store, m)
        assert catalog.load(store, m.manifest_key) == m
        rewrite(store, m.manifest_key, lambda d: d.update(reason="forged"))
        with pytest.raises(IntegrityError, match="altered"):
            catalog.load(store, m.manifest_key)
        other = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"
                               )["KeyMetadata"]["Arn"]
        catalog.save(store, m)
        foreign = LocalStore(tmp_path, signing=Policy(KmsKey(other, client=kms)))
        with pytest.raises(IntegrityError, match="another key"):
            catalog.load(foreign, m.manifest_key)


@pytest.mark.parametrize(("change", "sentence"), [
    (lambda d: d.update(size="abc"), "size: 'abc' is not of type 'integer'."),
    (lambda d: d["snapshot"].pop("taken_at"), "snapshot: 'taken_at' is a required property."),
    (lambda d: d.update(retention="forever"), "retention: 'forever' is not one of"),
    (lambda d: d.update(tables=[{"schema": "public"}]), "tables.0: 'name' is a required"),
    (lambda d: d.update(status="DONE", size=0), "size: 0 is less than the minimum of 1."),
])
def test_wrong_field_types_get_one_sentence_each(tmp_path, change, sentence):
    store = LocalStore(tmp_path, signing=Policy(FileKey(key_file(tmp_path))))
    m = manifest()
    data = m.to_dict()
    change(data)
    store.put(m.manifest_key, json.dumps(store.signing.seal(data)).encode())
    with pytest.raises(IntegrityError, match="is not a valid Backstop manifest") as caught:
        catalog.load(store, m.manifest_key)
    assert sentence in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_schema_in_the_docs_is_the_one_applied():
    import jsonschema

    docs = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
    schema = json.loads(docs.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json.loads(catalog.SCHEMA.read_text())
    assert catalog.schema_problems(manifest(status=FAILED, size=0).to_dict()) == []
    for profile in profiles.PROFILES:  # every value the code writes, the schema accepts
        assert catalog.schema_problems(manifest(scope=Scope(profile=profile)).to_dict()) == []


def test_one_bad_manifest_is_skipped_with_its_name_and_never_latest(store, caplog):
    good, newer = manifest(1), manifest(2)
    catalog.save(store, good)
    catalog.save(store, newer)
    store.put(newer.manifest_key, store.get(newer.manifest_key)[:40])  # truncated
    link = store.root / "daily/quotepro/2026/01/31/20260131T140009Z-000009.manifest.json"
    link.symlink_to(store.root / good.manifest_key)
    caplog.set_level(logging.WARNING)

    listed = catalog.list_manifests(store, database="quotepro")

    assert [m.id for m in listed] == [good.id]
    assert catalog.latest_done(store, "quotepro") == good
    assert newer.manifest_key in caplog.text and "is not JSON" in caplog.text
    assert "20260131T140009Z-000009.manifest.json in " in caplog.text
    assert caplog.text.rstrip().endswith(": it is a link")
