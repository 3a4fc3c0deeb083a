"""Off-platform copies in a bucket with Object Lock (moto): the item names the bucket's default
retention and each kept backup's lock, and fails when a lock was shortened or the default
no longer says what the configuration declares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from backstop import report
from backstop.manifest import Manifest
from backstop.report_model import FAIL, PASS, Item, Period, Settings
from backstop.store import open_store
from tests.integration import year

BUCKET = "locked-backups"
SETTINGS = Settings.from_dict({
    "databases": [{"name": year.DATABASE, "schedules": ["daily", "weekly", "monthly"]}],
    "object_lock": {"mode": "GOVERNANCE", "days": 30}})


def _bucket(base: Manifest, days: int) -> Iterator[Any]:
    """A versioned bucket whose default retention locks every object ``days`` days
    (GOVERNANCE), holding December's backups and the week before it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        client.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}}})
        year.generate(open_store(f"s3://{BUCKET}/backstop", s3_client=client), base,
                      start=year.MONTH_START - timedelta(days=7), end=date(2026, 1, 1))
        yield client


@pytest.fixture
def s3(base: Manifest) -> Iterator[Any]:
    yield from _bucket(base, 30)


@pytest.fixture
def s3_short(base: Manifest) -> Iterator[Any]:
    """The same, but the bucket's default retention is 10 days, not the configured 30."""
    yield from _bucket(base, 10)


def _copies(client: Any) -> Item:
    store = open_store(f"s3://{BUCKET}/backstop", s3_client=client)
    got = report.build(store, SETTINGS, Period.month(year.MONTH, now=year.REPORT_NOW),
                       now=year.REPORT_NOW, sources=report.Sources())
    return got.item("off-platform-copies")


def _object(client: Any, day: str) -> str:
    (key,) = [o["Key"] for o in client.list_objects_v2(
        Bucket=BUCKET, Prefix=f"backstop/daily/quotepro/2025/12/{day}/")["Contents"]
        if not o["Key"].endswith(".manifest.json")]
    return str(key)


def test_locked_copies_pass_with_the_mode_and_retain_until_named(s3: Any) -> None:
    item = _copies(s3)
    assert item.status == PASS, item
    assert "Object Lock default: GOVERNANCE, 30 days" in item.evidence
    # The kept backups: dailies of the 26th to 31st, four weeklies, the monthly, the manual.
    (locks,) = [e for e in item.evidence if e.startswith("Object Lock of the 12 kept")]
    head = s3.head_object(Bucket=BUCKET, Key=_object(s3, "31"))
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert f"{head['ObjectLockRetainUntilDate']:%Y-%m-%d}" in locks


def test_a_shortened_lock_fails_naming_the_object(s3: Any) -> None:
    shortened = _object(s3, "28")
    until = datetime.now(UTC) + timedelta(days=2)
    s3.put_object_retention(Bucket=BUCKET, Key=shortened, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    item = _copies(s3)
    assert item.status == FAIL and item.summary == "1 problem(s) with the stored copies"
    (line,) = [e for e in item.evidence if "locked only until" in e]
    assert line.startswith(f"object {shortened.removeprefix('backstop/')} is locked only "
                           f"until {until:%Y-%m-%d}") and "locked 30 days" in line


def test_a_bucket_default_other_than_the_config_fails_naming_it(s3_short: Any) -> None:
    item = _copies(s3_short)
    assert item.status == FAIL
    assert (f"OBJECT LOCK on s3://{BUCKET} is GOVERNANCE 10 days; the config says "
            "GOVERNANCE 30 days") in item.evidence
    # and every kept object it locked is locked too briefly
    assert len([e for e in item.evidence if "locked only until" in e]) == 12
