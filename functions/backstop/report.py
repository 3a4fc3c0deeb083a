"""The runbook's monthly Backup Verification Checklist, answered item by item from evidence.

Every item of the checklist (and the runbook's RPO, RTO and PITR targets) is answered with a
status, a one-line summary and the evidence that decides it (backup ids, dates, object keys,
rule ids, measured times), plus chart data where a trend is the evidence. The evidence comes
from the manifests in the store, the store's real configuration (the bucket's lifecycle,
replication and Object Lock settings, each object's copies), the database services'
point-in-time recovery state, the alarms' history and people's acknowledgements; never from
job logs. ``build`` assembles the report, ``report_html`` renders it, ``publish`` keeps both
in the store under ``reports/``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from backstop import catalog, pitr, report_aws, report_checks, report_html
from backstop.errors import ConfigError
from backstop.manifest import RETENTION_CLASSES
from backstop.report_model import DUE, PASS, Entry, Item, Period, Report, Settings
from backstop.s3store import S3Store
from backstop.store import ObjectStore

REPORTS_PREFIX = "reports/"
ACKNOWLEDGEMENTS_PREFIX = "acknowledgements/"
PEOPLE_ITEMS = {
    "review-procedures": "Review and update emergency procedures",
    "train-team": "Train team on restore procedures",
}


@dataclasses.dataclass(frozen=True)
class Sources:
    """Where evidence beyond the store comes from: boto3 clients (None where not available,
    and then the item says so) and the alert topic whose alarms' history is read."""

    rds: Any = None
    secrets: Any = None
    cloudwatch: Any = None
    topic_arn: str | None = None
    supabase_api: str = pitr.SUPABASE_API


def build(store: ObjectStore, settings: Settings, period: Period, *, now: datetime,
          sources: Sources) -> Report:
    names = [d.name for d in settings.databases] or None
    backups = entries(store, names, period)
    pitr_found = pitr.statuses(settings, rds=sources.rds, secrets=sources.secrets, now=now,
                               api=sources.supabase_api)
    items = [
        report_checks.automated_backups(backups, settings, period,
                                        report_aws.horizons(store, settings, now)),
        report_checks.manual_backup(backups, period),
        report_checks.backup_sizes(backups, settings, period),
        report_checks.restore_tests(backups, settings, period),
        report_aws.off_platform(store, backups, settings, period, now),
        report_aws.retention(store, settings),
        *people_items(store, period),
        report_checks.recovery_point(backups, settings, period),
        pitr.pitr_item(pitr_found, settings),
    ]
    alarms = (None if sources.cloudwatch is None or not sources.topic_arn else
              tuple(report_aws.alarm_history(sources.cloudwatch, sources.topic_arn, period)))
    return Report(period, now, store.location, settings, tuple(items), alarms)


def publish(store: ObjectStore, report: Report) -> tuple[str, str]:
    """Keep the report in the store (HTML and JSON); returns their keys. The JSON goes last:
    its presence says the month's report is complete."""
    html_key, json_key = report_keys(report.period.label)
    store.put(html_key, report_html.render(report).encode())
    store.put(json_key, json.dumps(report.to_dict(), indent=2).encode())
    return html_key, json_key


def notice(store: ObjectStore, report: Report, keys: tuple[str, str], *, region: str
           ) -> dict[str, Any]:
    """What the alert topic sends: the verdict item by item, and where the report is."""
    html, data = (f"{store.location}/{key}" for key in keys)
    link = html
    if html.startswith("s3://"):
        bucket, _, key = html.removeprefix("s3://").partition("/")
        link = (f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}"
                f"&prefix={urllib.parse.quote(key)}")
    failed = [i.id for i in report.failed]
    subject = (f"Backstop checklist {report.period.label}: "
               + (f"{len(failed)} item(s) FAIL" if failed else "PASS"))
    lines = [f"Backup verification checklist {report.period.label} for {store.location}: "
             f"{report.status}", "", *(f"[{i.status}] {i.title}: {i.summary}"
                                       for i in report.items),
             "", f"Report (open in the S3 console): {link}", f"HTML: {html}", f"JSON: {data}"]
    return {"month": report.period.label, "status": report.status, "failed": failed,
            "html": html, "json": data, "link": link, "subject": subject,
            "message": "\n".join(lines)}


# --------------------------------------------------------------------------- reading
def entries(store: ObjectStore, databases: Iterable[str] | None, period: Period
            ) -> dict[str, list[Entry]]:
    """database -> its backups of the period and of the month before it (the trend, the last
    recovery point before the period), oldest first. With no databases named: every backup
    of every database in the store."""
    if databases is None:
        found: dict[str, list[Entry]] = {}
        for manifest in catalog.list_manifests(store):
            found.setdefault(manifest.database, []).append(Entry.of(manifest))
        return {db: sorted(es, key=_order) for db, es in sorted(found.items())}
    months = (period.start - timedelta(days=1), period.start)
    result = {}
    for database in databases:
        prefixes = [f"{c}/{database}/{m:%Y/%m}/" for c in RETENTION_CLASSES for m in months]
        manifests = (report_aws.manifests_in(store, prefixes) if isinstance(store, S3Store)
                     else catalog.trusted(store, prefixes))
        result[database] = sorted((Entry.of(m) for m in manifests), key=_order)
    return result


def _order(entry: Entry) -> tuple[datetime, str]:
    return entry.started_at, entry.id


# --------------------------------------------------------------------------- people
def acknowledge(store: ObjectStore, item: str, *, by: str, note: str = "",
                now: datetime | None = None) -> dict[str, str]:
    """Record that a person did a checklist item about people; the report shows the newest."""
    if item not in PEOPLE_ITEMS:
        raise ConfigError(f"{item!r} is not an item about people; use one of "
                          f"{', '.join(PEOPLE_ITEMS)}")
    if not by.strip() or len(by) > 100 or len(note) > 500:
        raise ConfigError("give who acknowledges (1-100 characters) and a note of at most "
                          "500 characters")
    at = now or datetime.now(UTC)
    record = {"item": item, "by": by.strip(), "note": note.strip(), "at": at.isoformat()}
    key = f"{ACKNOWLEDGEMENTS_PREFIX}{item}/{at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}.json"
    store.put(key, json.dumps(record, indent=2).encode())
    return record


def acknowledgements(store: ObjectStore, item: str) -> list[dict[str, str]]:
    """Every acknowledgement of an item, newest first."""
    keys = sorted((k for k in store.keys(f"{ACKNOWLEDGEMENTS_PREFIX}{item}/")
                   if k.endswith(".json")), reverse=True)
    records = []
    for key in keys:
        try:
            record = json.loads(store.get(key))
            datetime.fromisoformat(record["at"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"acknowledgement {key} in {store.location} is damaged; delete "
                              "it and acknowledge again") from None
        records.append(record)
    return records


def people_items(store: ObjectStore, period: Period) -> list[Item]:
    items = []
    for item_id, title in PEOPLE_ITEMS.items():
        records = acknowledgements(store, item_id)
        done = [r for r in records if period.holds(datetime.fromisoformat(r["at"]))]
        if done:
            newest = done[0]
            items.append(Item(item_id, title, PASS,
                              f"acknowledged {newest['at'][:10]} by {newest['by']}",
                              tuple(f"{r['at'][:16]} {r['by']}: {r['note'] or '(no note)'}"
                                    for r in done)))
            continue
        last = (f"last acknowledged {records[0]['at'][:10]} by {records[0]['by']}" if records
                else "never acknowledged")
        items.append(Item(item_id, title, DUE, f"due this month ({last})",
                          (f"record it: backstop acknowledge {item_id} --note '...'",)))
    return items


# --------------------------------------------------------------------------- storing
def report_keys(label: str) -> tuple[str, str]:
    """Where the report of a month is kept in the store: (html, json)."""
    base = f"{REPORTS_PREFIX}{label}/backstop-checklist-{label}"
    return f"{base}.html", f"{base}.json"

