"""The checklist items that the backups themselves answer: did the schedules run, are the
sizes believable, did restore tests pass within the RTO, what RPO was achieved, and does the
manual backup path work. Each takes the backups of every database (oldest first) and the
period, and names in its evidence every backup, day or gap that decides it."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from backstop import index
from backstop.report_model import FAIL, PASS, Chart, Entry, Item, Period, Settings

Backups = Mapping[str, Sequence[Entry]]
TREND_BACKUPS = 7  # the trend a size is judged against: the median of this many before it
# A schedule's start moves by seconds to minutes from day to day (EventBridge, the workflow,
# the dump's snapshot); a gap between two daily backups is 24 h give or take that.
RPO_TOLERANCE = timedelta(minutes=15)
ON_DEMAND = ("manual", "pre-migration")
MAX_LINES = 12


def schedules(settings: Settings, backups: Backups) -> dict[str, tuple[str, ...]]:
    """database -> its scheduled classes; with no settings, every database found is expected
    to have been backed up daily (the runbook's minimum)."""
    if settings.databases:
        return {d.name: d.schedules for d in settings.databases}
    return dict.fromkeys(backups, ("daily",))


def scheduled_on(retention_class: str, day: date) -> bool:
    """The deployment's cadences: daily, weekly on Sunday, monthly on the 1st (UTC)."""
    return {"daily": True, "weekly": day.weekday() == 6, "monthly": day.day == 1}[
        retention_class]


def automated_backups(backups: Backups, settings: Settings, period: Period,
                      horizons: Mapping[str, datetime | None]) -> Item:
    """Every scheduled day holds a DONE backup of its class; a day whose manifests may be
    gone (past retention and the old versions kept) cannot be evidenced, which fails too."""
    evidence: list[str] = []
    missing_total = unseen_total = ran = 0
    for database, classes in schedules(settings, backups).items():
        entries = backups.get(database, [])
        since = entries[0].started_at.date() if entries else None
        if since and since > period.start.date():
            evidence.append(f"{database}: watched since its first backup on {since}")
        for retention_class in classes:
            due = [d for d in period.days() if scheduled_on(retention_class, d)
                   and (since is None or d >= since)]
            done = {e.started_at.date() for e in entries
                    if e.retention == retention_class and e.done}.intersection(due)
            horizon = horizons.get(retention_class)
            unseen = [d for d in due if d not in done and horizon is not None
                      and datetime.combine(d, time(), UTC) < horizon]
            missing = [d for d in due if d not in done and d not in unseen]
            ran += len(done)
            missing_total += len(missing)
            unseen_total += len(unseen)
            line = f"{database} {retention_class}: {len(done)} of {len(due)} days"
            if missing:
                line += f"; MISSING {days_text(missing)}"
            if unseen:
                line += f"; NOT EVIDENCED {days_text(unseen)}"
            evidence.append(line)
            for failed in [e for e in entries if e.retention == retention_class
                           and not e.done and e.started_at.date() in missing][:MAX_LINES]:
                evidence.append(f"  {failed.started_at:%Y-%m-%d} {failed.id} {failed.status}: "
                                f"{failed.error or 'no error recorded'}")
    if not evidence:
        return Item("automated-backups", TITLES["automated-backups"], FAIL,
                    "no database is configured and the store holds no backup")
    if unseen_total:
        evidence.append("NOT EVIDENCED: those manifests are past retention and past the old "
                        "versions the bucket keeps; keep old versions longer "
                        "(retention_days.noncurrent_versions), or report sooner after the month")
    parts = [f"{missing_total} scheduled day(s) without a backup" if missing_total else "",
             f"{unseen_total} day(s) that can no longer be evidenced" if unseen_total else ""]
    summary = ("; ".join(p for p in parts if p)
               or f"every scheduled backup ran ({ran} in the period)")
    return Item("automated-backups", TITLES["automated-backups"],
                FAIL if missing_total or unseen_total else PASS, summary, tuple(evidence))


def manual_backup(backups: Backups, period: Period) -> Item:
    on_demand = sorted((e for entries in backups.values() for e in entries
                        if e.retention in ON_DEMAND and period.holds(e.started_at)),
                       key=lambda e: e.started_at, reverse=True)
    title = TITLES["manual-backup"]
    if not on_demand:
        return Item("manual-backup", title, FAIL, "no manual or pre-migration backup in the "
                    "period", ("take one: backstop backup --retention manual --reason "
                               "'monthly check' (or start the backup workflow from the console)",))
    newest = on_demand[0]
    evidence = tuple(f"{e.describe()}: {e.status}"
                     + {None: "", True: ", restore-tested", False: ", restore test FAILED"}[
                         e.verified] for e in on_demand[:MAX_LINES])
    if not newest.done:
        return Item("manual-backup", title, FAIL, f"the newest on-demand backup {newest.id} "
                    f"failed: {newest.error or 'no error recorded'}", evidence)
    return Item("manual-backup", title, PASS,
                f"{len(on_demand)} on-demand backup(s); the newest, {newest.id}, is DONE",
                evidence)


def backup_sizes(backups: Backups, settings: Settings, period: Period) -> Item:
    evidence: list[str] = []
    charts: list[Chart] = []
    bad = 0
    for database, entries in backups.items():
        series: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.done:
                series.setdefault(entry.scope.describe(), []).append(entry)
        for scope, done in series.items():
            points = []
            for i, entry in enumerate(done):
                if not period.holds(entry.started_at):
                    continue
                before = [e.size for e in done[max(0, i - TREND_BACKUPS):i]]
                trend = statistics.median(before) if before else None
                problem = size_problem(entry, trend, settings.collapsed_fraction)
                if problem:
                    bad += 1
                    evidence.append(f"{entry.describe()}: {problem}")
                points.append((f"{entry.started_at:%m-%d}", float(entry.size), bool(problem)))
            if points:
                sizes = [p[1] for p in points]
                evidence.insert(0, f"{database} {scope}: {len(points)} backups, "
                                   f"{human(min(sizes))} to {human(max(sizes))}, "
                                   f"median {human(statistics.median(sizes))}")
                charts.append(Chart(f"{database} ({scope}): backup size", "bytes",
                                    tuple(points)))
    title = TITLES["backup-sizes"]
    if not charts:
        return Item("backup-sizes", title, FAIL, "no finished backup in the period")
    summary = (f"{bad} backup(s) empty or collapsed against their trend" if bad else
               "no backup is empty or collapsed against its database's recent trend")
    return Item("backup-sizes", title, FAIL if bad else PASS, summary, tuple(evidence),
                tuple(charts))


def size_problem(entry: Entry, trend: float | None, fraction: float) -> str | None:
    if entry.size <= 0:
        return "EMPTY (0 bytes)"
    if trend and entry.size < fraction * trend:
        return (f"COLLAPSED: {human(entry.size)}, {entry.size / trend:.2f} of the trend "
                f"(median of the {TREND_BACKUPS} before it: {human(trend)}; "
                f"limit {fraction:g})")
    return None


def restore_tests(backups: Backups, settings: Settings, period: Period) -> Item:
    evidence: list[str] = []
    charts: list[Chart] = []
    failing = 0
    rto = settings.rto_minutes
    for database in schedules(settings, backups):
        tests = sorted(((datetime.fromisoformat(str(e.verification["verified_at"])), e)
                        for e in backups.get(database, [])
                        if e.verification and e.verification.get("verified_at")),
                       key=lambda t: t[0])
        tests = [(at, e) for at, e in tests if period.holds(at)]
        if not tests:
            failing += 1
            evidence.append(f"{database}: NO restore test in the period")
            continue
        failed = [(at, e) for at, e in tests if not e.verified]
        minutes = [(at, e, float(e.verification["restore_seconds"]) / 60)  # type: ignore[index]
                   for at, e in tests]
        slow = [(at, e, m) for at, e, m in minutes if m > rto]
        passed = len(tests) - len(failed)
        evidence.append(f"{database}: {len(tests)} restore tests, {passed} passed, "
                        f"{len(failed)} failed; measured RTO up to "
                        f"{max(m for _, _, m in minutes):.1f} min (target {rto:g} min); "
                        f"newest {tests[-1][0]:%Y-%m-%d}")
        if failed:
            at, entry = failed[-1]
            assert entry.verification is not None
            why = [*entry.verification.get("mismatches", []),
                   *entry.verification.get("problems", [])] or ["no reason recorded"]
            evidence.append(f"  newest FAILURE {at:%Y-%m-%d %H:%M}: backup {entry.id}: "
                            + "; ".join(str(w) for w in why[:5]))
        for at, entry, m in slow[-MAX_LINES:]:
            evidence.append(f"  OVER RTO {at:%Y-%m-%d}: backup {entry.id} took {m:.1f} min")
        failing += bool(failed or slow)
        charts.append(Chart(f"{database}: measured RTO per restore test", "minutes",
                            tuple((f"{at:%m-%d}", round(m, 2), m > rto or not e.verified)
                                  for at, e, m in minutes), rto, f"RTO {rto:g} min"))
    title = TITLES["restore-tests"]
    if not evidence:
        return Item("restore-tests", title, FAIL, "no database to test")
    summary = (f"{failing} database(s) without a passing restore test within the RTO"
               if failing else f"every database restored and verified within the RTO "
                               f"({rto:g} min)")
    return Item("restore-tests", title, FAIL if failing else PASS, summary, tuple(evidence),
                tuple(charts))


def recovery_point(backups: Backups, settings: Settings, period: Period) -> Item:
    """The worst gap between recovery points (DONE full backups, as the RPO alarm counts them,
    that no restore test proved wrong), by snapshot time, over the period, against the RPO;
    and the same between restore-tested ones, as evidence."""
    rpo = timedelta(hours=settings.rpo_hours)
    evidence: list[str] = []
    charts: list[Chart] = []
    breached = 0
    declared = {d.name: d.scope for d in settings.databases}
    for database in schedules(settings, backups):
        entries = backups.get(database, [])
        points = [e for e in entries if e.done and e.verified is not False
                  and index.is_full(e.scope.to_dict(), declared.get(database))]
        worst, gaps = worst_gap(points, entries, period)
        proven, _ = worst_gap([e for e in points if e.verified], entries, period)
        if worst is None:
            evidence.append(f"{database}: no backup and never watched")
            breached += 1
            continue
        over = worst[0] > rpo + RPO_TOLERANCE
        breached += over
        evidence.append(f"{database}: worst window {hours(worst[0])} "
                        f"{'OVER' if over else 'within'} the RPO of {settings.rpo_hours:g} h, "
                        f"from {worst[1]} to {worst[2]}")
        if proven is not None:
            evidence.append(f"  between restore-tested backups: worst {hours(proven[0])}")
        charts.append(Chart(f"{database}: hours between recovery points", "hours",
                            tuple((label, round(gap.total_seconds() / 3600, 2),
                                   gap > rpo + RPO_TOLERANCE) for label, gap in gaps),
                            settings.rpo_hours, f"RPO {settings.rpo_hours:g} h"))
    title = TITLES["rpo"]
    summary = (f"{breached} database(s) exceeded the RPO" if breached else
               f"every gap between full backups stayed within {settings.rpo_hours:g} h "
               f"(tolerance {RPO_TOLERANCE.seconds // 60} min)")
    return Item("rpo", title, FAIL if breached else PASS, summary, tuple(evidence),
                tuple(charts))


Gap = tuple[timedelta, str, str]


def worst_gap(points: Sequence[Entry], entries: Sequence[Entry], period: Period
              ) -> tuple[Gap | None, list[tuple[str, timedelta]]]:
    """The longest time in the period during which the newest recovery point was old, with
    what it ran from and to; and every gap that ended in the period (for the chart)."""
    if not entries:
        return None, []
    ordered = sorted(points, key=lambda e: e.snapshot_at)
    before = [e for e in ordered if e.snapshot_at < period.start]
    inside = [e for e in ordered if period.holds(e.snapshot_at)]
    if before:
        last_time, last_label = before[-1].snapshot_at, before[-1].id
    else:
        last_time = max(period.start, entries[0].started_at)
        last_label = f"the start of watching ({last_time:%Y-%m-%d %H:%M})"
    gaps: list[Gap] = []
    chart: list[tuple[str, timedelta]] = []
    for entry in inside:
        gap = entry.snapshot_at - max(last_time, period.start)
        gaps.append((entry.snapshot_at - last_time, last_label, entry.id))
        chart.append((f"{entry.snapshot_at:%m-%d}", gap))
        last_time, last_label = entry.snapshot_at, entry.id
    gaps.append((period.until - last_time, last_label,
                 f"the end of the period ({period.until:%Y-%m-%d %H:%M})"))
    return max(gaps, key=lambda g: g[0]), chart


def days_text(days: Sequence[date]) -> str:
    """2026-01-03, 2026-01-05..2026-01-07: runs of days shortened."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


TITLES = {
    "automated-backups": "Verify automated backups are running daily",
    "manual-backup": "Test manual backup command works",
    "backup-sizes": "Verify backup file size is reasonable (not 0 bytes)",
    "restore-tests": "Test restore on staging/test environment",
    "rpo": "RPO (data loss window) within the target",
}
