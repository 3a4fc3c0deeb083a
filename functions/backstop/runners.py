"""Where a backup or a restore runs: the function (Lambda) or the task (ECS Fargate).

Chosen per database from measured history, kept in its index: the last backups' size and
throughput, the last restores' throughput with every phase counted (download, decrypt,
pg_restore, index builds, checks). A run must fit in the function with a safety margin, or it
goes to the task. The function's speed is projected from the function's own runs only (a run
whose runner is unknown, rebuilt from manifests, counts when the function has none): a task
much faster than the function would otherwise make the next projection fit the function again,
whose run is then too slow, night after night. A function run that stopped at its deadline
keeps the database on the task until a function run succeeds. Configuration may pin a database
to one runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

LAMBDA, CONTAINER, AUTO = "lambda", "container", "auto"
RUNNERS = (AUTO, LAMBDA, CONTAINER)
MARGIN = 1.5  # a run must be projected at two thirds of the function's limit or less
HISTORY = 5  # runs looked at
STAGING_HEADROOM = 1.1  # a staged dump needs its plain size plus this margin of free space


@dataclasses.dataclass(frozen=True)
class Choice:
    runner: str  # LAMBDA or CONTAINER
    reason: str
    projected_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def throughput(entries: Sequence[Mapping[str, Any]]) -> float | None:
    """Bytes per second of the slowest of the last runs (plain dump bytes over wall time)."""
    rates = [int(e["plain_size"]) / float(e["seconds"]) for e in entries[:HISTORY]
             if float(e.get("seconds") or 0) > 0 and int(e.get("plain_size") or 0) > 0]
    return min(rates) if rates else None


def function_runs(entries: Sequence[Mapping[str, Any]],
                  good: Callable[[Mapping[str, Any]], bool]) -> list[Mapping[str, Any]]:
    """The good runs that measure the function, newest first: its own, or, when it has none,
    those whose runner is unknown. Never the task's."""
    own = [e for e in entries if good(e) and e.get("runner") == LAMBDA]
    return own or [e for e in entries if good(e) and e.get("runner") is None]


def _only_task(entries: Sequence[Mapping[str, Any]],
               good: Callable[[Mapping[str, Any]], bool]) -> bool:
    """Only the task has measured runs: nothing says how fast the function would be."""
    return not function_runs(entries, good) and any(
        good(e) and e.get("runner") == CONTAINER for e in entries)


def _done(entry: Mapping[str, Any]) -> bool:
    return entry.get("status") == "DONE"


def _restored(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("ok"))


def backup_runner(backups: Sequence[Mapping[str, Any]], *, function_seconds: float,
                  override: str = AUTO) -> Choice:
    """``backups``: the index's entries, newest first."""
    if override != AUTO:
        return Choice(override, f"configured: runner {override}")
    for entry in (e for e in backups if e.get("runner") == LAMBDA):
        if _done(entry):
            break
        if entry.get("stopped_at_deadline"):
            return Choice(CONTAINER, "a function run stopped at its time limit and none has "
                                     "succeeded since")
    if _only_task(backups, _done):
        return Choice(CONTAINER, "only the task has measured backups of this database; they "
                                 "do not say how fast the function would be")
    rate = throughput(function_runs(backups, _done))
    if rate is None:
        return Choice(LAMBDA, "no measured backup yet")
    size = max(int(e.get("plain_size") or 0) for e in [e for e in backups if _done(e)][:HISTORY])
    projected = size / rate
    pace = f"{size / 1e9:.2f} GB at the function's {rate / 1e6:.1f} MB/s"
    if projected * MARGIN <= function_seconds:
        return Choice(LAMBDA, f"{pace} fits the function's {function_seconds:g} s with "
                              f"margin {MARGIN:g}", round(projected, 1))
    return Choice(CONTAINER, f"{pace} needs {projected:.0f} s, over "
                             f"{function_seconds / MARGIN:.0f} s (the function's "
                             f"{function_seconds:g} s / {MARGIN:g})", round(projected, 1))


def restore_runner(plain_size: int, *, restores: Sequence[Mapping[str, Any]],
                   default_bytes_per_second: float, tmp_bytes: int, function_seconds: float,
                   target_bytes: int = 0, backups: Sequence[Mapping[str, Any]] = (),
                   override: str = AUTO) -> Choice:
    """A restore of a dump of ``plain_size`` bytes; into an occupied target of about
    ``target_bytes``, whose pre-restore backup runs first in the same runner and is sized
    from the target's backup history. Both are projected at the function's own speed."""
    if override != AUTO:
        return Choice(override, f"configured: runner {override}")
    if _only_task(restores, _restored):
        return Choice(CONTAINER, "only the task has measured restores of this database; they "
                                 "do not say how fast the function would be")
    rate = throughput(function_runs(restores, _restored)) or default_bytes_per_second
    seconds = plain_size / rate
    reason = f"restore of {plain_size / 1e9:.2f} GB at {rate / 1e6:.1f} MB/s"
    if target_bytes:
        if _only_task(backups, _done):
            return Choice(CONTAINER, f"{reason} after a pre-restore backup of "
                                     f"{target_bytes / 1e9:.2f} GB, whose database only the "
                                     "task has backed up")
        backup_rate = throughput(function_runs(backups, _done)) or rate
        seconds += target_bytes / backup_rate
        reason += (f" after a pre-restore backup of {target_bytes / 1e9:.2f} GB at "
                   f"{backup_rate / 1e6:.1f} MB/s")
    if plain_size * STAGING_HEADROOM > tmp_bytes:
        return Choice(CONTAINER, f"{reason}: the dump does not fit the function's "
                                 f"{tmp_bytes / 1e9:.1f} GB of /tmp", round(seconds, 1))
    if seconds * MARGIN > function_seconds:
        return Choice(CONTAINER, f"{reason} needs {seconds:.0f} s, over "
                                 f"{function_seconds / MARGIN:.0f} s", round(seconds, 1))
    return Choice(LAMBDA, f"{reason} fits the function", round(seconds, 1))
