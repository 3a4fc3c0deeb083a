"""A store holding a year of backups, as the deployment's schedules would have made them.

Every manifest is a copy of one real backup's manifest (real pg_dump, real gpg, verified by a
real restore), given the id, times, size and verification of one scheduled run, and written
the way the library commits a backup: the object first, then its manifest. So the generated
manifests stay valid as the manifest format evolves. Faults are injected on named days.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from backstop import catalog, prove
from backstop.backup import BackupRequest, run_backup
from backstop.manifest import DONE, FAILED, Manifest, object_key
from backstop.report_model import Settings
from backstop.store import ObjectStore, open_store
from tests.conftest import KeyPair, Postgres

DATABASE = "quotepro"
YEAR_START, YEAR_END = date(2025, 1, 1), date(2026, 1, 1)
MONTH, MONTH_START = "2025-12", date(2025, 12, 1)  # the month reported on: faults go there
REPORT_NOW = datetime(2026, 1, 1, 6, 30, tzinfo=UTC)  # the 1st, after the night's schedules
_templates: dict[str, Manifest] = {}


@dataclasses.dataclass(frozen=True)
class Faults:
    missing_days: tuple[date, ...] = ()  # no daily backup (the first of them FAILED)
    collapsed_day: date | None = None  # the daily backup is a tenth of its usual size
    failed_test_day: date | None = None  # that night's restore test found a difference
    slow_test_day: date | None = None  # that night's restore took 75 minutes


FAULTS = Faults(missing_days=(date(2025, 12, 16), date(2025, 12, 17)),
                collapsed_day=date(2025, 12, 20), failed_test_day=date(2025, 12, 9),
                slow_test_day=date(2025, 12, 3))
SETTINGS = Settings.from_dict({"databases": [{"name": DATABASE,
                                              "schedules": ["daily", "weekly", "monthly"]}]})


def template(pg: Postgres, keys: KeyPair, root: Path) -> Manifest:
    """One real backup of the sample, verified by a real restore (made once per session)."""
    if "manifest" not in _templates:
        store = open_store(str(root))
        made = run_backup(BackupRequest(DATABASE, retention="daily"), connection=pg.database(),
                          store=store, recipient_keys=[keys.public])
        prove.verify_backup(store, made, server=pg.connection("postgres"),
                            private_key=keys.private)
        (key,) = [k for k in store.keys() if k.endswith(made.id + ".manifest.json")]
        _templates["manifest"] = catalog.load(store, key)
    return _templates["manifest"]


def year(store: ObjectStore, base: Manifest, faults: Faults = Faults()) -> list[Manifest]:
    """January to November, then December with the faults (its own seed: the months before
    are the same whatever December holds)."""
    return (generate(store, base, end=MONTH_START)
            + generate(store, base, faults=faults, start=MONTH_START, seed=12))


def december(months_before: Path, base: Manifest, root: Path, faults: Faults) -> Path:
    """A copy of a store holding January to November, then December with ``faults``."""
    shutil.copytree(months_before, root)
    generate(open_store(str(root)), base, faults=faults, start=MONTH_START, seed=12)
    return root


def commit(store: ObjectStore, manifest: Manifest, body: bytes) -> None:
    """As a backup commits: the object, then the manifest that names it."""
    if body:
        store.put(manifest.key, body)
    catalog.save(store, manifest)  # signed with the store's key, as Backstop writes it


def generate(store: ObjectStore, base: Manifest, *, faults: Faults = Faults(),
             start: date = YEAR_START, end: date = YEAR_END, seed: int = 7) -> list[Manifest]:
    rng = random.Random(seed)
    made: list[Manifest] = []
    for day in _days(start, end):
        usual = int(20_000 * (1 + (day - YEAR_START).days / 1000))
        runs = [("daily", time(2))]
        if day.weekday() == 6:
            runs.append(("weekly", time(3)))
        if day.day == 1:
            runs.append(("monthly", time(4)))
        if day.day == 10:
            runs.append(("manual", time(14, 30)))
        newest: int | None = None  # index in made
        for retention, at in runs:
            started = datetime.combine(day, at, UTC) + timedelta(seconds=rng.randint(0, 40))
            if retention == "daily" and day in faults.missing_days:
                if day == faults.missing_days[0]:
                    made.append(_write(store, _failed(base, retention, started)))
                continue
            size = usual // 10 if (retention, day) == ("daily", faults.collapsed_day) else \
                int(usual * rng.uniform(0.98, 1.02))
            manifest = _write(store, _done(base, retention, started, size, rng),
                              rng.randbytes(size))
            made.append(manifest)
            if retention != "manual":
                newest = len(made) - 1
        if newest is not None:  # the nightly restore test of the newest backup, 05:00
            tested = _verified(made[newest], day, faults, rng)
            catalog.save(store, tested)
            made[newest] = tested
    return made


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _done(base: Manifest, retention: str, started: datetime, size: int,
          rng: random.Random) -> Manifest:
    backup_id = f"{started:%Y%m%dT%H%M%SZ}-{rng.randbytes(3).hex()}"
    return dataclasses.replace(
        base, id=backup_id, retention=retention, status=DONE, error=None,
        reason=f"scheduled {retention} backup" if retention != "manual" else "before release",
        started_at=started, finished_at=started + timedelta(seconds=rng.randint(30, 90)),
        key=object_key(retention, base.database, started, backup_id), size=size,
        snapshot={**base.snapshot, "taken_at": (started + timedelta(seconds=1)).isoformat()},
        verification=None)


def _failed(base: Manifest, retention: str, started: datetime) -> Manifest:
    backup_id = f"{started:%Y%m%dT%H%M%SZ}-fa11ed"
    return dataclasses.replace(
        base, id=backup_id, retention=retention, status=FAILED, reason="scheduled backup",
        started_at=started, finished_at=started + timedelta(seconds=12),
        key=object_key(retention, base.database, started, backup_id), size=0, sha256="",
        error="reading quotepro failed: connection refused; check the role's rights",
        snapshot={}, tables=(), verification=None)


def _verified(manifest: Manifest, day: date, faults: Faults, rng: random.Random) -> Manifest:
    assert manifest.verification is None
    report: dict[str, Any] = dict(_templates["manifest"].verification or {})
    ok = day != faults.failed_test_day
    report.update(backup_id=manifest.id, ok=ok,
                  verified_at=datetime.combine(day, time(5, rng.randint(3, 20)), UTC).isoformat(),
                  restore_seconds=4500.0 if day == faults.slow_test_day else
                  round(rng.uniform(40, 120), 1),
                  verify_seconds=round(rng.uniform(5, 15), 1),
                  mismatches=[] if ok else ["public.quotes: 1999 rows restored, 2000 in the "
                                            "manifest"],
                  problems=[] if ok else ["health check record_counts differs"])
    return dataclasses.replace(manifest, verification=report)


def _write(store: ObjectStore, manifest: Manifest, body: bytes = b"") -> Manifest:
    if body:
        manifest = dataclasses.replace(manifest, sha256=hashlib.sha256(body).hexdigest())
    commit(store, manifest, body)
    return manifest
