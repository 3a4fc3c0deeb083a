"""Where a backup or a restore runs: the function (Lambda) or the task (ECS Fargate).

Chosen per database from measured history, kept in its index: the last backups' size and
throughput, the last restores' throughput with every phase counted (download, decrypt,
pg_restore, index builds, checks). A run must fit in the function with a safety margin, or it
goes to the task; a function run that hit its deadline sends the next one to the task at once.
Configuration may pin a database to one runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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


def backup_runner(backups: Sequence[Mapping[str, Any]], *, function_seconds: float,
                  override: str = AUTO) -> Choice:
    """``backups``: the index's entries, newest first."""
    if override != AUTO:
        return Choice(override, f"configured: runner {override}")
    recent = list(backups[:HISTORY])
    if any(e.get("stopped_at_deadline") and e.get("runner") == LAMBDA for e in recent[:2]):
        return Choice(CONTAINER, "the last function run stopped at its time limit")
    done = [e for e in recent if e.get("status") == "DONE"]
    rate = throughput(done)
    if rate is None:
        return Choice(LAMBDA, "no measured backup yet")
    size = max(int(e["plain_size"]) for e in done)
    projected = size / rate
    if projected * MARGIN <= function_seconds:
        return Choice(LAMBDA, f"{size / 1e9:.2f} GB at {rate / 1e6:.1f} MB/s fits the "
                              f"function's {function_seconds:g} s with margin {MARGIN:g}",
                      round(projected, 1))
    return Choice(CONTAINER, f"{size / 1e9:.2f} GB at {rate / 1e6:.1f} MB/s needs "
                             f"{projected:.0f} s, over {function_seconds / MARGIN:.0f} s "
                             f"(the function's {function_seconds:g} s / {MARGIN:g})",
                  round(projected, 1))


def restore_runner(plain_size: int, *, restores: Sequence[Mapping[str, Any]],
                   default_bytes_per_second: float, tmp_bytes: int, function_seconds: float,
                   target_bytes: int = 0, backups: Sequence[Mapping[str, Any]] = (),
                   override: str = AUTO) -> Choice:
    """A restore of a dump of ``plain_size`` bytes; into an occupied target of about
    ``target_bytes``, whose pre-restore backup runs first in the same runner and is sized
    from the target's backup history."""
    if override != AUTO:
        return Choice(override, f"configured: runner {override}")
    rate = throughput([r for r in restores if r.get("ok")]) or default_bytes_per_second
    seconds = plain_size / rate
    reason = f"restore of {plain_size / 1e9:.2f} GB at {rate / 1e6:.1f} MB/s"
    if target_bytes:
        backup_rate = throughput([b for b in backups if b.get("status") == "DONE"]) or rate
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
