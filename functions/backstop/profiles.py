"""Source profiles: what a backup takes from a database. Every choice carries its reason.

A profile names the schemas a backup leaves out. `plain` leaves out nothing: every user
schema. `supabase` backs up what a Supabase project's owner means by "my database": the
application schemas in full, and `auth` and `storage` in full (definitions and rows), so users
can still log in after a restore into RDS. It leaves out the schemas Supabase's platform and
extensions manage; the list is the one `supabase db dump` leaves out of a schema dump,
`InternalSchemas` in the Supabase CLI's apps/cli-go/pkg/migration/dump.go, minus `auth` and
`storage`, which its data dump (same file, `excludedSchemas`) includes to move a project.

A backup that leaves out any schema (a profile's, --schema, --exclude-schema) names the kept
schemas to pg_dump (`include schema`) rather than the others (`exclude schema`): with only
exclusions, pg_dump still writes every extension, every event trigger, every publication and
the grants on extension objects inside the excluded schemas (observed with pg_dump 18 on the
Supabase-like test database), and the archive then creates objects in schemas it does not
hold. Named schemas bring none of them; `include extension` brings back the extensions that
travel (`travelling_extensions`). Event triggers and publications belong to the whole
database: only a backup of every schema holds them.

Which archive entries a target cannot hold is the restore rules' business (rules.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping

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
    # Left-out schemas whose extensions still travel: CREATE EXTENSION makes their objects.
    extension_schemas: tuple[str, ...] = ()

    def exclusion(self, schema: str) -> Choice | None:
        """The choice that leaves `schema` out (patterns use pg_dump's `*`), if any."""
        return next((c for c in self.exclude_schemas if _matches(c.name, schema)), None)

    def excluded(self, schema: str) -> bool:
        return self.exclusion(schema) is not None


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
    extension_schemas=("extensions",),
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
# functions and types, the bare name for a schema the extension created. Built-in extensions
# (plpgsql) are every database's own: pg_dump never writes them, nor does Backstop.
EXTENSION_MEMBERS = """
SELECT e.extname,
       array_agg(DISTINCT CASE WHEN s.nspname IS NOT NULL THEN s.nspname
                          ELSE n.nspname || '.' || coalesce(c.relname, p.proname, t.typname) END)
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                           AND d.refobjid = e.oid AND d.deptype = 'e'
LEFT JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                               AND c.oid = d.objid
LEFT JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND p.oid = d.objid
LEFT JOIN pg_catalog.pg_type t ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                              AND t.oid = d.objid
LEFT JOIN pg_catalog.pg_namespace s
       ON d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND s.oid = d.objid
LEFT JOIN pg_catalog.pg_namespace n
       ON n.oid = coalesce(c.relnamespace, p.pronamespace, t.typnamespace)
WHERE (s.nspname IS NOT NULL OR n.nspname IS NOT NULL) AND e.oid >= 16384
GROUP BY e.extname
"""
# Which tables in scope use each extension: a column of one of its types (or an array of
# one), or an index, default, constraint, trigger, policy or rule that depends on one of its
# objects. A target without the extension cannot hold such a table.
EXTENSION_TABLES = """
WITH member AS (
  SELECT e.extname, d.classid, d.objid FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                             AND d.refobjid = e.oid AND d.deptype = 'e'
  UNION ALL
  SELECT e.extname, d.classid, t.typarray FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                             AND d.refobjid = e.oid AND d.deptype = 'e'
  JOIN pg_catalog.pg_type t ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                           AND t.oid = d.objid AND t.typarray <> 0
)
SELECT DISTINCT m.extname, n.nspname, c.relname
FROM member m
JOIN pg_catalog.pg_depend u ON u.refclassid = m.classid AND u.refobjid = m.objid
JOIN pg_catalog.pg_class c ON c.oid = CASE u.classid
  WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN coalesce(
    (SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = u.objid), u.objid)
  WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN
    (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid = u.objid)
  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
    (SELECT k.conrelid FROM pg_catalog.pg_constraint k WHERE k.oid = u.objid)
  WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
    (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE g.oid = u.objid)
  WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
    (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = u.objid)
  WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
    (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid = u.objid)
  END
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname = ANY(%s) AND u.deptype <> 'e'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3
"""


def travelling_extensions(profile: Profile, kept: Collection[str],
                          members: Mapping[str, Collection[str]]) -> list[str]:
    """Extensions a backup of the `kept` schemas takes: those with every member object in a
    kept schema, in pg_catalog or in a schema the profile keeps extensions in (Supabase's
    `extensions`, which the restore creates). pg_net, pg_graphql, pgsodium and
    supabase_vault keep their objects in left-out schemas: they stay behind."""
    home = {"pg_catalog", *kept, *profile.extension_schemas}
    return sorted(name for name, objects in members.items()
                  if all(o.split(".", 1)[0] in home for o in objects))
