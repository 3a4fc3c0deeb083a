"""Profiles and restore rules as data: what each keeps and skips, and that a rule stands back
whenever the target can hold the entry. The rules' need is proved against real servers in
tests/supabase/test_restore_rules.py."""

from __future__ import annotations

import dataclasses

import pytest

from backstop import archive, profiles, rules, selection
from backstop.errors import ConfigError


def listed(desc: str, namespace: str, tag: str, owner: str = "postgres",
           definition: str = "", *, dump_id: int = 1, deps: tuple[int, ...] = ()
           ) -> archive.Entry:
    """An archive entry as pg_restore --list shows it (`-` for no schema)."""
    return archive.Entry(dump_id=dump_id, desc=desc,
                         namespace=None if namespace == "-" else namespace, tag=tag,
                         owner=owner, section="pre-data", defn=definition, deps=deps,
                         had_data=False, oid=None)


RDS = rules.Facts(
    superuser=False,
    available_extensions=frozenset({"vector", "pgcrypto", "uuid-ossp", "plpgsql"}),
    default_privilege_roles=frozenset({"backstop", "anon", "postgres"}),
    foreign_extensions=frozenset({"plpgsql"}),
    existing_schemas=frozenset({"public", "pg_catalog"}),
    schemas=frozenset({"public", "auth", "storage", "extensions", "pg_catalog"}),
    extension_members={"pg_net": frozenset({"net", "net.http_request_queue", "net.http_get"}),
                       "supabase_vault": frozenset({"vault.secrets"}),
                       "vector": frozenset({"extensions.vector"})})
SUPERUSER = dataclasses.replace(RDS, superuser=True)


def rule(entry: archive.Entry, facts: rules.Facts = RDS) -> str | None:
    found = rules.skipped(entry, facts)
    return found.name if found else None


def test_every_choice_and_rule_says_why() -> None:
    choices = [c for p in profiles.PROFILES.values()
               for c in (*p.exclude_schemas, *p.dump_options)]
    assert choices and all(len(c.reason) > 20 for c in choices)
    assert all(len(r.reason) > 20 for r in rules.RULES)
    assert len({r.name for r in rules.RULES}) == len(rules.RULES)


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'supa' is not one of plain, supabase"):
        profiles.get("supa")


def test_the_supabase_profile_keeps_application_auth_and_storage() -> None:
    schemas = ["public", "billing", "auth", "storage", "extensions", "graphql", "vault",
               "pgsodium", "realtime", "cron", "net", "supabase_functions", "pg_toast",
               "_timescaledb_catalog", "information_schema", "supabase_migrations"]
    assert profiles.kept_schemas(profiles.SUPABASE, schemas) == [
        "auth", "billing", "public", "storage"]
    assert profiles.kept_schemas(profiles.PLAIN, ["public", "vault"]) == ["public", "vault"]


def test_the_supabase_profile_leaves_out_what_supabase_db_dump_does() -> None:
    """The names `supabase db dump` leaves out of a schema dump (the Supabase CLI's
    `InternalSchemas`, pkg/migration/dump.go), but for `auth` and `storage`, which its data
    dump takes to move a project."""
    internal = {
        "information_schema", "pg_*", "_analytics", "_realtime", "_supavisor", "auth", "etl",
        "extensions", "pgbouncer", "realtime", "storage", "supabase_functions",
        "supabase_migrations", "cron", "dbdev", "graphql", "graphql_public", "net", "pgmq",
        "pgsodium", "pgsodium_masks", "pgtle", "repack", "tiger", "tiger_data",
        "timescaledb_*", "_timescaledb_*", "topology", "vault"}
    left_out = [c.name for c in profiles.SUPABASE.exclude_schemas]
    assert sorted(left_out) == sorted(internal - {"auth", "storage"})
    assert profiles.SUPABASE.excluded("pg_temp_3") and profiles.SUPABASE.excluded(
        "_timescaledb_internal") and not profiles.SUPABASE.excluded("timescale")


def test_extensions_travel_when_their_objects_do() -> None:
    members = {"vector": ["extensions.vector", "extensions.l2_distance"],
               "uuid-ossp": ["extensions.uuid_generate_v4"],
               "pg_net": ["net", "net.http_get", "net.request_status"],
               "pg_graphql": ["graphql.resolve"],
               "supabase_vault": ["vault.secrets"],
               "ltree": ["billing.ltree"], "pg_stat_statements": ["pg_catalog.pg_stat_x"]}
    kept = ["public", "billing", "auth", "storage"]
    assert profiles.travelling_extensions(profiles.SUPABASE, kept, members) == [
        "ltree", "pg_stat_statements", "uuid-ossp", "vector"]
    everything = ["public", "billing", "extensions", "net", "graphql", "vault"]
    assert profiles.travelling_extensions(profiles.PLAIN, everything, members) == sorted(members)
    # a plain source that leaves out the schema an extension lives in leaves it out too
    assert profiles.travelling_extensions(profiles.PLAIN, ["public", "billing"], members) == [
        "ltree", "pg_stat_statements"]


@pytest.mark.parametrize(("entry", "expected"), [
    (listed("EVENT TRIGGER", "-", "pgrst_ddl_watch", "supabase_admin"), "event-trigger"),
    (listed("PUBLICATION", "-", "cdc", definition="CREATE PUBLICATION cdc FOR ALL TABLES "
                                                 "WITH (publish = 'insert');"), "publication"),
    (listed("PUBLICATION", "-", "s", definition="CREATE PUBLICATION s FOR TABLES IN SCHEMA "
                                               "public;"), "publication"),
    (listed("PUBLICATION", "-", "supabase_realtime",
           definition="CREATE PUBLICATION supabase_realtime WITH (publish = 'insert');"), None),
    (listed("PUBLICATION TABLES IN SCHEMA", "-", "s public"), "publication"),
    (listed("SECURITY LABEL", "vault", "TABLE secrets", definition="SECURITY LABEL FOR "
           "pgsodium ON COLUMN vault.secrets.secret IS 'ENCRYPT';"), "security-label"),
    (listed("EXTENSION", "-", "pg_graphql", ""), "extension-missing"),
    (listed("EXTENSION", "-", "vector", ""), None),
    (listed("COMMENT", "-", 'EXTENSION "pg_graphql"', ""), "extension-missing"),
    (listed("COMMENT", "-", "EXTENSION plpgsql", ""), "extension-not-owned"),
    (listed("COMMENT", "-", 'EXTENSION "uuid-ossp"', ""), None),
    (listed("ACL", "-", "SCHEMA net", "supabase_admin"), "extension-missing"),
    (listed("ACL", "net", "FUNCTION http_get(url text)", "supabase_admin"), "extension-missing"),
    (listed("TABLE DATA", "vault", "secrets", "supabase_admin"), "extension-missing"),
    (listed("TABLE DATA", "public", "secrets"), None),
    (listed("ACL", "extensions", "TABLE vector"), None),  # the target offers vector
    (listed("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES", "supabase_admin"),
     "default-privileges"),
    (listed("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES", "postgres"), None),
    (listed("TRIGGER", "public", "quotes quote_accepted_webhook", definition=(
        "CREATE TRIGGER quote_accepted_webhook AFTER UPDATE ON public.quotes FOR EACH ROW "
        "EXECUTE FUNCTION supabase_functions.http_request('https://x', 'POST');")),
     "trigger-function-missing"),
    (listed("TRIGGER", "auth", "users on_auth_user_created", definition=(
        "CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW "
        "EXECUTE FUNCTION public.handle_new_user();")), None),
    (listed("SCHEMA", "-", "public", definition="CREATE SCHEMA public;"), "existing-schema"),
    (listed("SCHEMA", "-", "public",
           definition="-- *not* creating schema, since initdb creates it"), None),
    (listed("SCHEMA", "-", "auth", definition="CREATE SCHEMA auth;"), None),
    (listed("TABLE", "public", "quotes"), None),
])
def test_what_an_rds_master_cannot_restore(entry: archive.Entry, expected: str | None) -> None:
    assert rule(entry) == expected


def test_a_superuser_target_holds_what_needs_a_superuser() -> None:
    for entry in [listed("EVENT TRIGGER", "-", "pgrst_ddl_watch"),
                  listed("PUBLICATION", "-", "cdc", definition="FOR ALL TABLES"),
                  listed("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES",
                        "supabase_admin"),
                  listed("COMMENT", "-", "EXTENSION plpgsql", "")]:
        assert rule(entry, SUPERUSER) is None
    # a missing extension or label provider stays missing for a superuser too
    assert rule(listed("EXTENSION", "-", "pg_net", ""), SUPERUSER) == "extension-missing"
    label = listed("SECURITY LABEL", "vault", "TABLE secrets",
                  definition="SECURITY LABEL FOR pgsodium ON COLUMN vault.secrets.secret")
    assert rule(label, SUPERUSER) == "security-label"


def test_what_needs_a_skipped_entry_is_skipped_and_named_with_it() -> None:
    toc = archive.Toc((1, 16, 0), "db", "18", "18", (
        listed("EXTENSION", "-", "pg_net", dump_id=1),
        listed("VIEW", "public", "recent_requests", dump_id=2, deps=(1,)),
        listed("ACL", "public", "TABLE recent_requests", dump_id=3, deps=(2,)),
        listed("SCHEMA", "-", "public", definition="CREATE SCHEMA public;", dump_id=4),
        listed("TABLE", "public", "quotes", dump_id=5, deps=(4,)),
        listed("TRIGGER", "public", "quotes quote_accepted_webhook", dump_id=6, deps=(5,),
               definition="CREATE TRIGGER quote_accepted_webhook AFTER UPDATE ON "
                          "public.quotes FOR EACH ROW EXECUTE FUNCTION "
                          "supabase_functions.http_request();")))
    skips = rules.Skips(selection.Archive(toc), RDS)

    kept = skips.keep(list(toc.entries))

    # the schema the target has stops no one; what the extension's absence takes, it names
    assert [e.dump_id for e in kept] == [5]
    assert {s["entry"]: s["reason"] for s in skips.report()} == {
        "EXTENSION - pg_net": "belongs to an extension the target does not offer",
        "VIEW public recent_requests": "needs EXTENSION - pg_net, which is skipped",
        "ACL public TABLE recent_requests":
            "needs VIEW public recent_requests, which is skipped",
        "SCHEMA - public": rules.RULES[0].reason,
        "TRIGGER public quotes quote_accepted_webhook": rules.RULES[-1].reason}
    recorded = {"view public.recent_requests": {"table": None},
                "column public.recent_requests.url": {"table": None},
                "table public.quotes": {"table": "public.quotes"},
                "trigger public.quotes.quote_accepted_webhook": {"table": "public.quotes"},
                "schema public": {"table": None}}
    objects, tables = skips.left_out(recorded)
    # the target's own `public` is compared as any schema
    assert objects == {"view public.recent_requests", "column public.recent_requests.url",
                       "trigger public.quotes.quote_accepted_webhook"}
    assert tables == frozenset()


def test_a_manifest_keeps_only_the_extension_members_its_archive_names() -> None:
    entries = [listed("ACL", "-", "SCHEMA net"), listed("TABLE DATA", "vault", "secrets"),
               listed("ACL", "net", "FUNCTION http_get(url text)"),
               listed("TABLE", "public", "quotes")]
    members = {"pg_net": ["net", "net.http_get", "net.http_post", "net._http_response"],
               "supabase_vault": ["vault.secrets", "vault.create_secret"],
               "vector": ["extensions.vector", "extensions.l2_distance"]}
    assert rules.archived_members(members, entries) == {
        "pg_net": ["net", "net.http_get"], "supabase_vault": ["vault.secrets"]}
