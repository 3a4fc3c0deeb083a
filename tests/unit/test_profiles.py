"""Profiles and restore rules as data: what each keeps and skips, and that a rule stands back
whenever the target can hold the entry. The rules' need is proved against real servers in
tests/supabase/test_restore_rules.py."""

from __future__ import annotations

import dataclasses

import pytest

from backstop import profiles
from backstop.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Entry:
    desc: str
    namespace: str
    tag: str
    owner: str = "postgres"
    definition: str = ""


RDS = profiles.Facts(
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


def rule(entry: Entry, facts: profiles.Facts = RDS) -> str | None:
    found = profiles.skipped(entry, facts)
    return found.name if found else None


def test_every_choice_and_rule_says_why() -> None:
    choices = [c for p in profiles.PROFILES.values()
               for c in (*p.exclude_schemas, *p.dump_options, *p.new_project_skip_tables)]
    assert choices and all(len(c.reason) > 20 for c in choices)
    assert all(len(r.reason) > 20 for r in profiles.RULES)
    assert len({r.name for r in profiles.RULES}) == len(profiles.RULES)


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


def test_extensions_travel_when_their_objects_do() -> None:
    members = {"vector": ["extensions.vector", "extensions.l2_distance"],
               "uuid-ossp": ["extensions.uuid_generate_v4"],
               "pg_net": ["net", "net.http_get", "net.request_status"],
               "pg_graphql": ["graphql.resolve"],
               "supabase_vault": ["vault.secrets"],
               "ltree": ["billing.ltree"], "pg_stat_statements": ["pg_catalog.pg_stat_x"]}
    assert profiles.travelling_extensions(profiles.SUPABASE, members) == [
        "ltree", "pg_stat_statements", "uuid-ossp", "vector"]
    assert profiles.travelling_extensions(profiles.PLAIN, members) == sorted(members)


@pytest.mark.parametrize(("entry", "expected"), [
    (Entry("EVENT TRIGGER", "-", "pgrst_ddl_watch", "supabase_admin"), "event-trigger"),
    (Entry("PUBLICATION", "-", "cdc", definition="CREATE PUBLICATION cdc FOR ALL TABLES "
                                                 "WITH (publish = 'insert');"), "publication"),
    (Entry("PUBLICATION", "-", "s", definition="CREATE PUBLICATION s FOR TABLES IN SCHEMA "
                                               "public;"), "publication"),
    (Entry("PUBLICATION", "-", "supabase_realtime",
           definition="CREATE PUBLICATION supabase_realtime WITH (publish = 'insert');"), None),
    (Entry("PUBLICATION TABLES IN SCHEMA", "-", "s public"), "publication"),
    (Entry("SECURITY LABEL", "vault", "TABLE secrets", definition="SECURITY LABEL FOR "
           "pgsodium ON COLUMN vault.secrets.secret IS 'ENCRYPT';"), "security-label"),
    (Entry("EXTENSION", "-", "pg_graphql", ""), "extension-missing"),
    (Entry("EXTENSION", "-", "vector", ""), None),
    (Entry("COMMENT", "-", 'EXTENSION "pg_graphql"', ""), "extension-missing"),
    (Entry("COMMENT", "-", "EXTENSION plpgsql", ""), "extension-not-owned"),
    (Entry("COMMENT", "-", 'EXTENSION "uuid-ossp"', ""), None),
    (Entry("ACL", "-", "SCHEMA net", "supabase_admin"), "extension-missing"),
    (Entry("ACL", "net", "FUNCTION http_get(url text)", "supabase_admin"), "extension-missing"),
    (Entry("TABLE DATA", "vault", "secrets", "supabase_admin"), "extension-missing"),
    (Entry("TABLE DATA", "public", "secrets"), None),
    (Entry("ACL", "extensions", "TABLE vector"), None),  # the target offers vector
    (Entry("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES", "supabase_admin"),
     "default-privileges"),
    (Entry("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES", "postgres"), None),
    (Entry("TRIGGER", "public", "quotes quote_accepted_webhook", definition=(
        "CREATE TRIGGER quote_accepted_webhook AFTER UPDATE ON public.quotes FOR EACH ROW "
        "EXECUTE FUNCTION supabase_functions.http_request('https://x', 'POST');")),
     "trigger-function-missing"),
    (Entry("TRIGGER", "auth", "users on_auth_user_created", definition=(
        "CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW "
        "EXECUTE FUNCTION public.handle_new_user();")), None),
    (Entry("SCHEMA", "-", "public", definition="CREATE SCHEMA public;"), "existing-schema"),
    (Entry("SCHEMA", "-", "public",
           definition="-- *not* creating schema, since initdb creates it"), None),
    (Entry("SCHEMA", "-", "auth", definition="CREATE SCHEMA auth;"), None),
    (Entry("TABLE", "public", "quotes"), None),
])
def test_what_an_rds_master_cannot_restore(entry: Entry, expected: str | None) -> None:
    assert rule(entry) == expected


def test_a_superuser_target_holds_what_needs_a_superuser() -> None:
    for entry in [Entry("EVENT TRIGGER", "-", "pgrst_ddl_watch"),
                  Entry("PUBLICATION", "-", "cdc", definition="FOR ALL TABLES"),
                  Entry("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES",
                        "supabase_admin"),
                  Entry("COMMENT", "-", "EXTENSION plpgsql", "")]:
        assert rule(entry, SUPERUSER) is None
    # a missing extension or label provider stays missing for a superuser too
    assert rule(Entry("EXTENSION", "-", "pg_net", ""), SUPERUSER) == "extension-missing"
    loaded = dataclasses.replace(SUPERUSER, label_providers=frozenset({"pgsodium"}))
    label = Entry("SECURITY LABEL", "vault", "TABLE secrets",
                  definition="SECURITY LABEL FOR pgsodium ON COLUMN vault.secrets.secret")
    assert rule(label, SUPERUSER) == "security-label" and rule(label, loaded) is None
