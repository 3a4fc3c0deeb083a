"""The ``databases`` setting: each database's name, secret, scope, schedules, health checks,
runner and source profile, checked as the library will use them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backstop import health
from backstop.errors import BackstopError
from backstop.profiles import PROFILES
from infra.config_values import SECRET_ARN, SECRET_NAME, ConfigurationError
from infra.storage_config import SCHEDULED_CLASSES

SCOPE_MODES = ("full", "schema-only", "data-only")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # as the library's object keys allow
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Scope:
    mode: str = "full"
    tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()

    def to_input(self) -> dict[str, Any]:
        """The scope as it appears in state machine input."""
        return {"mode": self.mode, "tables": list(self.tables),
                "exclude_tables": list(self.exclude_tables)}


@dataclass(frozen=True)
class Database:
    name: str
    secret: str  # a Secrets Manager secret name or its complete ARN
    scope: Scope = Scope()
    schedules: tuple[str, ...] = SCHEDULED_CLASSES
    # health queries (name -> SQL returning one value), recorded in each backup's snapshot
    # and required to return the same after every restore
    checks: Mapping[str, str] = field(default_factory=dict)
    runner: str = "auto"  # auto (from measured history), lambda or container
    profile: str = "plain"  # what the source is: which schemas every backup of it leaves out

    @property
    def secret_is_arn(self) -> bool:
        return self.secret.startswith("arn:")


def parse_databases(value: Any) -> tuple[Database, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError("databases", "no database is configured",
                                 'list at least one {"name": ..., "secret": ...}')
    seen: set[str] = set()
    result = []
    for i, item in enumerate(value):
        key = f"databases[{i}]"
        if not isinstance(item, dict):
            raise ConfigurationError(key, "is not an object", 'use {"name": ..., "secret": ...}')
        extra = set(item) - {"name", "secret", "scope", "schedules", "checks", "runner",
                             "profile"}
        if extra:
            raise ConfigurationError(f"{key}.{sorted(extra)[0]}", "is not a database setting",
                                     "use name, secret, scope, schedules, checks, runner, "
                                     "profile")
        runner = item.get("runner", "auto")
        if runner not in ("auto", "lambda", "container"):
            raise ConfigurationError(f"{key}.runner", f"{runner!r} is not a runner",
                                     "use auto (chosen from measured history), lambda or "
                                     "container")
        profile = item.get("profile", "plain")
        if profile not in PROFILES:
            raise ConfigurationError(f"{key}.profile", f"{profile!r} is not a source profile",
                                     f"use one of {', '.join(PROFILES)} (docs/supabase.md)")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(f"{key}.name", f"{name!r} is not a database name",
                                     "use 1-63 lowercase letters, digits, '-' or '_'")
        if name in seen:
            raise ConfigurationError(f"{key}.name", f"{name!r} is listed twice",
                                     "give each database once")
        seen.add(name)
        secret = item.get("secret")
        if not isinstance(secret, str) or not (
                SECRET_ARN.match(secret) or (not secret.startswith("arn:")
                                               and SECRET_NAME.match(secret))):
            raise ConfigurationError(f"{key}.secret", f"{secret!r} is not a secret name or ARN",
                                     "give the Secrets Manager secret name or its complete ARN")
        schedules = item.get("schedules", list(SCHEDULED_CLASSES))
        if not isinstance(schedules, list) or any(s not in SCHEDULED_CLASSES for s in schedules):
            raise ConfigurationError(f"{key}.schedules", f"{schedules!r} is not a schedule list",
                                     f"use a subset of {list(SCHEDULED_CLASSES)}")
        result.append(Database(name=name, secret=secret,
                               scope=_scope(f"{key}.scope", item.get("scope", {})),
                               schedules=tuple(dict.fromkeys(schedules)),
                               checks=_checks(f"{key}.checks", item.get("checks", {})),
                               runner=runner, profile=profile))
    return tuple(result)


def _checks(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigurationError(key, "is not an object",
                                 'use {"newest_quote": "SELECT max(created_at) FROM quotes"}')
    for name, query in value.items():
        if not _CHECK_NAME.match(name):
            raise ConfigurationError(f"{key}.{name}", "is not a check name",
                                     "use 1-40 lowercase letters, digits or '_'")
        if not isinstance(query, str) or not query.strip():
            raise ConfigurationError(f"{key}.{name}", "is not an SQL query",
                                     "give one SELECT that returns a single value")
        try:
            health.validate(name, query)  # the same rule the library applies when it runs
        except BackstopError as exc:
            raise ConfigurationError(f"{key}.{name}", "is not a read-only query",
                                     str(exc)) from None
    return dict(value)


def _scope(key: str, value: Any) -> Scope:
    if not isinstance(value, dict):
        raise ConfigurationError(key, "is not an object",
                                 'use {"mode": "full", "tables": [], "exclude_tables": []}')
    mode = value.get("mode", "full")
    if mode not in SCOPE_MODES:
        raise ConfigurationError(f"{key}.mode", f"{mode!r} is not a scope mode",
                                 f"use one of {', '.join(SCOPE_MODES)}")
    tables = []
    for sub in ("tables", "exclude_tables"):
        names = value.get(sub, [])
        if not isinstance(names, list) or not all(isinstance(t, str) and _TABLE.match(t)
                                                  for t in names):
            raise ConfigurationError(f"{key}.{sub}", f"{names!r} is not a list of table names",
                                     "list names like 'quotes' or 'public.quotes'")
        tables.append(tuple(names))
    if tables[0] and tables[1]:
        raise ConfigurationError(f"{key}.exclude_tables", "cannot be combined with tables",
                                 "give either tables to include or tables to exclude")
    return Scope(mode=mode, tables=tables[0], exclude_tables=tables[1])
