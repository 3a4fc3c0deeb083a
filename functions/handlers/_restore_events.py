"""Restore-workflow input -> a small typed request, with one-sentence errors for the console.

Two inputs: a verification run ``{"database": "quotepro", "backup_id": "latest"}`` and a
manual restore, which also names the restore mode, the target (``"scratch"`` or an existing
database by its secret) and, for an existing database, ``confirm`` with its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backstop.errors import ConfigError
from backstop.restore import RestoreRequest

VERIFY_FIELDS = ("database", "backup_id")
RESTORE_FIELDS = ("database", "backup_id", "before", "mode", "tables", "target", "confirm",
                  "keep_hours", "incident_at")
SCRATCH, DATABASE = "scratch", "database"


@dataclasses.dataclass(frozen=True)
class RestoreInput:
    database: str | None
    backup_id: str  # "latest" or a backup id
    request: RestoreRequest
    target: str  # SCRATCH or DATABASE
    target_secret: str | None = None
    before: datetime | None = None
    keep_hours: int | None = None
    incident_at: datetime | None = None


def parse_verification(event: Any) -> RestoreInput:
    """``{"database": "quotepro", "backup_id": "latest" | "<id>"}``."""
    fields = _fields(event, VERIFY_FIELDS, '{"database": "quotepro", "backup_id": "latest"}')
    database = fields.get("database")
    if not isinstance(database, str) or not database:
        raise ConfigError('the input needs "database", the name of a configured database')
    return RestoreInput(database=database, backup_id=_backup_id(fields),
                        request=RestoreRequest(), target=SCRATCH)


def parse_restore(event: Any, *, default_keep_hours: int, max_keep_hours: int) -> RestoreInput:
    """A manual restore, e.g. ``{"database": "quotepro", "backup_id": "latest", "mode":
    "tables", "tables": ["quotes"], "target": "scratch", "keep_hours": 24}``."""
    fields = _fields(event, RESTORE_FIELDS,
                     '{"database": "quotepro", "backup_id": "latest", "target": "scratch"}')
    database = fields.get("database")
    if database is not None and (not isinstance(database, str) or not database):
        raise ConfigError('"database" must be the name of a configured database')
    backup_id = _backup_id(fields)
    if backup_id == "latest" and database is None:
        raise ConfigError('"backup_id": "latest" needs "database"; or give a backup id')
    before = _time(fields, "before")
    if before is not None and backup_id != "latest":
        raise ConfigError('"before" picks the newest backup before a time; use it with '
                          '"backup_id": "latest", not with a backup id')
    tables = fields.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables):
        raise ConfigError('"tables" must be a list of table names like ["quotes"]')
    mode = fields.get("mode") or "full"
    if not isinstance(mode, str):
        raise ConfigError('"mode" must be full, tables, data-only or schema-only')
    confirm = fields.get("confirm")
    if confirm is not None and not isinstance(confirm, str):
        raise ConfigError('"confirm" must be the target database name, as text')
    target, secret = _target(fields.get("target"))
    keep = fields.get("keep_hours")
    if target == DATABASE:
        if not confirm:
            raise ConfigError('restoring into an existing database replaces what it holds: add '
                              '"confirm" with the target database\'s name (a pre-restore backup '
                              "of its current state is taken first)")
        if keep is not None:
            raise ConfigError('"keep_hours" is for a scratch target; remove it')
    else:
        if confirm is not None:
            raise ConfigError('"confirm" is only for an existing database target; a scratch '
                              "instance is new and empty: remove it")
        keep = default_keep_hours if keep is None else keep
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= max_keep_hours:
            raise ConfigError(f'"keep_hours" must be a whole number from 1 to {max_keep_hours}')
    return RestoreInput(database=database, backup_id=backup_id,
                        request=RestoreRequest(mode=mode, tables=tuple(tables), confirm=confirm),
                        target=target, target_secret=secret, before=before, keep_hours=keep,
                        incident_at=_time(fields, "incident_at"))


def secret_name(secret: str) -> str:
    """A secret's name, also from its complete ARN (``...:secret:<name>-AbCdEf``)."""
    if secret.startswith("arn:") and ":secret:" in secret:
        name = secret.split(":secret:", 1)[1]
        return name[:-7] if len(name) > 7 and name[-7] == "-" else name
    return secret


def configured_database(secret: str, secrets: Mapping[str, str]) -> str | None:
    """The configured database (of ``secrets``: database -> secret) whose secret ``secret``
    is, by name or complete ARN on either side; None when it is none of them."""
    name = secret_name(secret)
    return next((database for database, configured in secrets.items()
                 if secret == configured or name == secret_name(configured)), None)


def _fields(event: Any, allowed: tuple[str, ...], example: str) -> Mapping[str, Any]:
    if not isinstance(event, Mapping):
        raise ConfigError(f"the input must be a JSON object like {example}")
    unknown = sorted(set(event) - set(allowed))
    if unknown:
        raise ConfigError(f"the input has an unknown field {unknown[0]!r}; "
                          f"use {', '.join(allowed)}")
    return event


def _backup_id(fields: Mapping[str, Any]) -> str:
    backup_id = fields.get("backup_id") or "latest"
    if not isinstance(backup_id, str):
        raise ConfigError('"backup_id" must be "latest" or a backup id from backstop list')
    return backup_id


def _target(value: Any) -> tuple[str, str | None]:
    if value is None or value == SCRATCH:
        return SCRATCH, None
    if isinstance(value, Mapping) and set(value) == {"secret"} \
            and isinstance(value["secret"], str) and value["secret"]:
        return DATABASE, value["secret"]
    raise ConfigError('"target" must be "scratch" or {"secret": "<name or ARN of the target '
                      'database\'s secret>"}')


def _time(fields: Mapping[str, Any], name: str) -> datetime | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f'"{name}" must be a time like 2026-03-14T09:30:00Z') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
