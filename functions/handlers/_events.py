"""Workflow input -> library models, with one-sentence errors for the person at the console."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backstop.backup import BackupRequest
from backstop.errors import ConfigError
from backstop.manifest import Scope

FIELDS = ("database", "retention", "reason", "scope")
SCOPE_FIELDS = ("mode", "tables", "exclude_tables")
MAX_REASON = 200


def parse_request(event: Any) -> BackupRequest:
    """A backup request from workflow input such as
    ``{"database": "quotepro", "retention": "manual", "reason": "before v2 migration",
    "scope": {"mode": "full", "tables": [], "exclude_tables": []}}``."""
    if not isinstance(event, Mapping):
        raise ConfigError('the input must be a JSON object like {"database": "quotepro"}')
    unknown = sorted(set(event) - set(FIELDS))
    if unknown:
        raise ConfigError(f"the input has an unknown field {unknown[0]!r}; "
                          f"use {', '.join(FIELDS)}")
    database = event.get("database")
    if not isinstance(database, str) or not database:
        raise ConfigError('the input needs "database", the name of a configured database')
    retention = event.get("retention") or "manual"
    if not isinstance(retention, str):
        raise ConfigError('"retention" must be a string such as "manual" or "pre-migration"')
    reason = event.get("reason") or f"{retention} backup"
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ConfigError(f'"reason" must be text of at most {MAX_REASON} characters')
    return BackupRequest(database=database, retention=retention, reason=reason,
                         scope=parse_scope(event.get("scope")))


def parse_scope(value: Any) -> Scope:
    if value is None:
        return Scope()
    if not isinstance(value, Mapping):
        raise ConfigError('"scope" must be an object like {"mode": "schema-only"}')
    unknown = sorted(set(value) - set(SCOPE_FIELDS))
    if unknown:
        raise ConfigError(f'"scope" has an unknown field {unknown[0]!r}; '
                          f"use {', '.join(SCOPE_FIELDS)}")
    lists = []
    for name in ("tables", "exclude_tables"):
        items = value.get(name) or []
        if not isinstance(items, list) or not all(isinstance(t, str) and t for t in items):
            raise ConfigError(f'"scope.{name}" must be a list of table names')
        lists.append(tuple(items))
    return Scope(mode=value.get("mode") or "full", tables=lists[0], exclude_tables=lists[1])


def request_to_dict(request: BackupRequest) -> dict[str, Any]:
    scope = request.scope
    return {"database": request.database, "retention": request.retention,
            "reason": request.reason,
            "scope": {"mode": scope.mode, "tables": list(scope.tables),
                      "exclude_tables": list(scope.exclude_tables)}}
