"""Source profiles and restore rules: what a backup takes from a database, and which archive
entries a plain PostgreSQL or RDS target cannot hold. Every choice carries its reason.

A profile names the schemas a backup leaves out. `plain` leaves out nothing: every user
schema. `supabase` backs up what a Supabase project's owner means by "my database": the
application schemas in full, and `auth` and `storage` in full (definitions and rows), so users
can still log in after a restore into RDS. It leaves out the schemas Supabase's platform and
extensions manage; the list is the one `supabase db dump` leaves out of a schema dump,
`InternalSchemas` in the Supabase CLI's apps/cli-go/pkg/migration/dump.go, minus `auth` and
`storage`, which its data dump (same file, `excludedSchemas`) includes to move a project.

Dumping the kept schemas by name (pg_dump --schema) rather than excluding the others matters:
with only --exclude-schema, pg_dump still writes every extension, every event trigger, every
publication and the grants on extension objects inside the excluded schemas (observed with
pg_dump 18 on the Supabase-like test database); with --schema it writes none of them, and
--extension brings back the extensions that travel (`travelling_extensions`).

The restore rules are for a target that is plain PostgreSQL or RDS, restored into by a role
that is not a superuser (RDS's master user). Each was observed with stock pg_restore on the
Supabase-like test database (tests/supabase/test_restore_rules.py repeats the experiment).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from backstop.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Choice:
    name: str  # a schema (pg_dump pattern), a pg_dump option, a table or an entry kind
    reason: str


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    exclude_schemas: tuple[Choice, ...] = ()
    dump_options: tuple[Choice, ...] = ()
    # Left out of a data-only restore into a new Supabase project, which has its own rows.
    new_project_skip_tables: tuple[Choice, ...] = ()

    def excluded(self, schema: str) -> bool:
        """Whether `schema` is left out (patterns use pg_dump's `*`)."""
        return any(_matches(choice.name, schema) for choice in self.exclude_schemas)


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), name) is not None


_MANAGED = "managed by the Supabase platform, which recreates it in every project"
_ROOT_KEY = ("encrypted with the project's root key, which never leaves Supabase: unreadable "
             "anywhere else, and secrets must not be copied into backups")

SUPABASE = Profile(
    name="supabase",
    description="a Supabase project: application schemas, auth and storage; not what "
                "Supabase manages",
    exclude_schemas=(
        Choice("information_schema", "system catalog views, not data"),
        Choice("pg_*", "system schemas, not data"),
        Choice("_analytics", f"Logflare's tables, {_MANAGED}"),
        Choice("_realtime", f"Realtime's tenant tables, {_MANAGED}"),
        Choice("_supavisor", f"the pooler's tenant tables, {_MANAGED}"),
        Choice("etl", f"Supabase ETL's replication state, {_MANAGED}"),
        Choice("extensions", "holds extension objects, which CREATE EXTENSION brings back; "
                             "the restore creates the schema and the extensions in it"),
        Choice("pgbouncer", "the pooler's password lookup over pg_authid, which only the "
                            f"source's superuser may read; {_MANAGED}"),
        Choice("realtime", f"Realtime's subscriptions and messages, {_MANAGED}"),
        Choice("supabase_functions", "Database Webhooks' machinery over pg_net, which RDS "
                                     "lacks; enable webhooks in a new project to get it back"),
        Choice("supabase_migrations", "the CLI's migration history of the source project; "
                                      "a new project keeps its own"),
        Choice("cron", "pg_cron's jobs: a restored copy must not start running production's "
                       "schedule; recreate jobs on purpose (see docs/supabase.md)"),
        Choice("dbdev", "database.dev packages, owned by pg_tle"),
        Choice("graphql", "pg_graphql's objects; RDS has no pg_graphql and Supabase recreates "
                          "them"),
        Choice("graphql_public", "the GraphQL API's entry point over pg_graphql, "
                                 f"{_MANAGED}"),
        Choice("net", "pg_net's request queue: transient, and RDS has no pg_net"),
        Choice("pgmq", "owned by the pgmq extension, which RDS lacks"),
        Choice("pgsodium", f"pgsodium's key table: {_ROOT_KEY}"),
        Choice("pgsodium_masks", f"pgsodium's decrypting views: {_ROOT_KEY}"),
        Choice("pgtle", "owned by the pg_tle extension, which recreates it"),
        Choice("repack", "owned by the pg_repack extension, which recreates it"),
        Choice("tiger", "owned by PostGIS's geocoder extension"),
        Choice("tiger_data", "owned by PostGIS's geocoder extension"),
        Choice("topology", "owned by postgis_topology"),
        Choice("timescaledb_*", "TimescaleDB internals"),
        Choice("_timescaledb_*", "TimescaleDB internals"),
        Choice("vault", f"Vault's secrets: {_ROOT_KEY}"),
    ),
    dump_options=(
        Choice("--no-publications", "supabase_realtime is Realtime's configuration; a copy "
                                    "has no Realtime (re-add tables in a new project)"),
        Choice("--no-subscriptions", "logical replication belongs to the source server"),
        Choice("--no-security-labels", "pgsodium's column encryption labels need its label "
                                       "provider, loaded only on Supabase; labelled columns "
                                       "travel as the ciphertext they hold"),
    ),
    new_project_skip_tables=(
        # the Supabase CLI's dump_data.sh (apps/cli-go/pkg/migration/scripts) leaves these out
        Choice("auth.schema_migrations", "the new project's GoTrue records its own migrations"),
        Choice("storage.migrations", "the new project's Storage records its own migrations"),
    ),
)

PLAIN = Profile(name="plain", description="every user schema, nothing left out")
PROFILES = {profile.name: profile for profile in (PLAIN, SUPABASE)}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"profile {name!r} is not one of {', '.join(PROFILES)}") from None


def kept_schemas(profile: Profile, schemas: Collection[str]) -> list[str]:
    """The schemas a backup with `profile` dumps, out of the database's own `schemas`."""
    return sorted(s for s in schemas if not profile.excluded(s))


# Each extension's member objects, read in the backup's snapshot: `schema.name` for relations,
# functions and types, the bare name for a schema the extension created.
EXTENSION_MEMBERS = """
SELECT e.extname,
       array_agg(DISTINCT CASE WHEN s.nspname IS NOT NULL THEN s.nspname
                          ELSE n.nspname || '.' || coalesce(c.relname, p.proname, t.typname) END)
FROM pg_extension e
JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
                AND d.deptype = 'e'
LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
LEFT JOIN pg_namespace s ON d.classid = 'pg_namespace'::regclass AND s.oid = d.objid
LEFT JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, p.pronamespace, t.typnamespace)
WHERE s.nspname IS NOT NULL OR n.nspname IS NOT NULL
GROUP BY e.extname
"""


def travelling_extensions(profile: Profile, members: Mapping[str, Collection[str]]) -> list[str]:
    """Extensions a backup takes: those with every member object in a kept schema, in
    `extensions` (Supabase's home for them) or in pg_catalog. pg_net, pg_graphql, pgsodium
    and supabase_vault keep their objects in left-out schemas: they stay behind."""
    home = {"extensions", "pg_catalog"}
    return sorted(name for name, objects in members.items()
                  if all((schema := o.split(".", 1)[0]) in home or not profile.excluded(schema)
                         for o in objects))


# ------------------------------------------------------------------------------ restore rules
class Entry(Protocol):
    """One archive TOC entry, as `pg_restore --list` names it, and its SQL when known."""

    @property
    def desc(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def definition(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the rules need to know about the backup and the target."""

    superuser: bool  # the restoring role
    available_extensions: frozenset[str]  # offered by the target server
    # roles whose default privileges the restoring role may set (its own, those it has the
    # privileges of, those the restore created and granted to it)
    default_privilege_roles: frozenset[str]
    foreign_extensions: frozenset[str] = frozenset()  # on the target, owned by another role
    label_providers: frozenset[str] = frozenset()  # loaded on the target (none on RDS)
    existing_schemas: frozenset[str] = frozenset()  # in the target database before the restore
    # schemas whose objects the target will hold: the archive's and the target's own
    schemas: frozenset[str] = frozenset()
    # from the source (EXTENSION_MEMBERS): extension -> its member objects
    extension_members: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...]  # the entries' desc
    reason: str
    applies: Callable[[Entry, Facts], bool]


def _extension_of(entry: Entry) -> str:
    return entry.tag.removeprefix("EXTENSION ").strip('"')


def _object_of(entry: Entry) -> str:
    """`schema.name` of the object an entry creates or grants on, or a schema's name."""
    name = entry.tag.split(" ", 1)[-1] if entry.desc in ("ACL", "COMMENT") else entry.tag
    name = name.split("(", 1)[0].strip('"')
    return name if entry.namespace == "-" else f"{entry.namespace}.{name}"


def _lacking_extension_object(entry: Entry, facts: Facts) -> bool:
    if entry.namespace == "-" and (entry.desc == "EXTENSION" or entry.tag.startswith(
            "EXTENSION ")):
        return _extension_of(entry) not in facts.available_extensions
    return any(_object_of(entry) in members for ext, members in facts.extension_members.items()
               if ext not in facts.available_extensions)


def _publishes_everything(entry: Entry, facts: Facts) -> bool:
    return not facts.superuser and (
        entry.desc == "PUBLICATION TABLES IN SCHEMA"
        or re.search(r"\bFOR (ALL TABLES|TABLES IN SCHEMA)\b", entry.definition) is not None)


def _unloaded_label_provider(entry: Entry, facts: Facts) -> bool:
    provider = re.search(r"SECURITY LABEL FOR (\S+)", entry.definition)
    return provider is None or provider.group(1).strip('"') not in facts.label_providers


def _function_schema_missing(entry: Entry, facts: Facts) -> bool:
    called = re.search(r'EXECUTE (?:FUNCTION|PROCEDURE) ("(?:[^"]|"")+"|\w+)\.', entry.definition)
    return called is not None and called.group(1).strip('"') not in facts.schemas


RULES: tuple[Rule, ...] = (
    Rule("existing-schema", ("SCHEMA",),
         "the target database has it already (every database has `public`; pg_dump writes "
         "CREATE SCHEMA public when the schema is named)",
         lambda entry, facts: entry.tag in facts.existing_schemas
         and "CREATE SCHEMA" in entry.definition),
    Rule("event-trigger", ("EVENT TRIGGER",),
         "only a superuser may create an event trigger (RDS's master user is not one); "
         "Supabase's react to DDL for PostgREST, pg_graphql, pg_net and pg_cron",
         lambda entry, facts: not facts.superuser),
    Rule("publication", ("PUBLICATION", "PUBLICATION TABLES IN SCHEMA"),
         "only a superuser may publish all tables or a whole schema",
         _publishes_everything),
    Rule("security-label", ("SECURITY LABEL",),
         "its label provider (pgsodium, sepgsql) is not loaded on the target",
         _unloaded_label_provider),
    Rule("extension-missing", ("EXTENSION", "COMMENT", "ACL", "TABLE DATA"),
         "belongs to an extension the target does not offer",
         _lacking_extension_object),
    Rule("extension-not-owned", ("COMMENT",),
         "the extension already exists on the target, owned by another role: only its owner "
         "may comment on it",
         lambda entry, facts: not facts.superuser and entry.tag.startswith("EXTENSION ")
         and _extension_of(entry) in facts.foreign_extensions),
    Rule("default-privileges", ("DEFAULT ACL",),
         "sets default privileges for a role the restoring role is not a member of",
         lambda entry, facts: not facts.superuser
         and entry.owner not in facts.default_privilege_roles),
    Rule("trigger-function-missing", ("TRIGGER",),
         "calls a function in a schema neither the backup nor the target has (a Supabase "
         "Database Webhook calls supabase_functions.http_request)",
         _function_schema_missing),
)


def skipped(entry: Entry, facts: Facts) -> Rule | None:
    """The rule by which the target cannot hold `entry`, or None when it can."""
    return next((rule for rule in RULES
                 if entry.desc in rule.kinds and rule.applies(entry, facts)), None)
