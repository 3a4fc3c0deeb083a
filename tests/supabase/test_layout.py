"""The Supabase-like test database holds what a hosted project holds, and behaves like one:
`postgres` is no superuser, the managed objects belong to `supabase_admin`, and a signed-in
user sees only their company's quotes through RLS. The RDS-like server's master can create a
database and roles, and the extensions RDS offers, but nothing a superuser alone may do."""

from __future__ import annotations

import psycopg
import pytest

from tests.supabase.layout import SUPABASE_ONLY, Source, Target

MANAGED_SCHEMAS = {"auth", "storage", "realtime", "extensions", "graphql", "graphql_public",
                   "vault", "pgsodium", "net", "supabase_functions", "supabase_migrations",
                   "cron", "pgbouncer"}


def one(source: Source, query: str, *params: object) -> object:
    with source.postgres.connect() as conn:
        row = conn.execute(query, params or None).fetchone()
        assert row is not None
        return row[0]


def test_postgres_is_demoted_and_supabase_admin_is_the_superuser(supabase: Source, rds: Target,
                                                                 major: int) -> None:
    assert supabase.cluster.major == rds.cluster.major == major  # the server each name says
    with supabase.cluster.admin() as conn:
        roles = {name: rest for name, *rest in conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication,"
            " rolbypassrls FROM pg_roles").fetchall()}
    assert roles["postgres"] == [False, True, True, True, True, True]
    assert roles["supabase_admin"][0] is True
    assert roles["service_role"][-1] is True  # BYPASSRLS
    assert {"anon", "authenticated", "authenticator", "supabase_auth_admin",
            "supabase_storage_admin", "dashboard_user"} <= set(roles)
    assert one(supabase, "SELECT pg_has_role('postgres', 'pg_read_all_data', 'MEMBER')") is True


def test_managed_schemas_event_triggers_and_publication(supabase: Source) -> None:
    schemas = one(supabase, "SELECT array_agg(nspname::text) FROM pg_namespace")
    assert isinstance(schemas, list) and set(schemas) >= MANAGED_SCHEMAS
    assert one(supabase, "SELECT array_agg(DISTINCT evtowner::regrole::text) "
                         "FROM pg_event_trigger") == ["supabase_admin"]
    assert one(supabase, "SELECT count(*) FROM pg_event_trigger") == 4
    assert one(supabase, "SELECT array_agg(schemaname || '.' || tablename) FROM "
                         "pg_publication_tables WHERE pubname = 'supabase_realtime'") == [
        "public.quotes"]


def test_extensions_live_where_supabase_puts_them(supabase: Source, major: int) -> None:
    assert supabase.extensions["uuid-ossp"] == supabase.extensions["pgcrypto"] == "extensions"
    if major == 18:
        assert supabase.extensions["vector"] == "extensions"
        assert one(supabase, "SELECT typnamespace::regnamespace::text FROM pg_attribute "
                             "JOIN pg_type t ON t.oid = atttypid WHERE attrelid = "
                             "'public.document_embeddings'::regclass AND attname = 'embedding'"
                   ) == "extensions"
        assert set(SUPABASE_ONLY) <= set(supabase.extensions)
    else:  # no pgvector and no extension_control_path on Debian's 15: plain SQL stand-ins
        assert sorted(supabase.emulated) == sorted(SUPABASE_ONLY)
    assert one(supabase, "SELECT count(*) FROM vault.decrypted_secrets "
                         "WHERE decrypted_secret LIKE 'sk_test_%'") == 1


def test_auth_users_are_referenced_from_public_tables(supabase: Source) -> None:
    assert one(supabase, "SELECT count(*) FROM auth.users") == 60
    assert one(supabase, "SELECT count(*) FROM auth.identities") == 60
    assert one(supabase, "SELECT count(*) FROM public.profiles p JOIN auth.users u "
                         "ON u.id = p.id") == 60  # the sign-up trigger made each profile
    assert one(supabase, "SELECT count(DISTINCT created_by) FROM public.quotes") == 60
    assert one(supabase, "SELECT count(*) FROM storage.objects WHERE owner IS NULL") == 0


def test_rls_shows_a_signed_in_user_only_their_company(supabase: Source) -> None:
    with supabase.postgres.connect() as conn:
        user, company = conn.execute(
            "SELECT id, company_id FROM public.profiles ORDER BY id LIMIT 1").fetchone() or (
            None, None)
        expected = conn.execute("SELECT count(*) FROM public.quotes WHERE company_id = %s",
                                [company]).fetchone()
        conn.execute("SET ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     [f'{{"sub": "{user}", "role": "authenticated"}}'])
        seen = conn.execute("SELECT count(*), count(DISTINCT company_id) FROM public.quotes"
                            ).fetchone()
        pdfs = conn.execute("SELECT count(*) FROM storage.objects").fetchone()
        conn.execute("SET ROLE anon")
        anonymous = conn.execute("SELECT count(*) FROM public.quotes").fetchone()
    assert expected is not None and seen == (expected[0], 1)
    assert pdfs is not None and 0 < pdfs[0] < 400
    assert anonymous == (0,)
    assert one(supabase, "SELECT count(*) FROM pg_policies WHERE qual LIKE '%auth.uid()%' "
                         "OR with_check LIKE '%auth.uid()%'") >= 5


def test_the_rds_master_is_no_superuser(rds: Target) -> None:
    db = rds.database("layout_check")
    with db.connect(autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (False, True, True)
        conn.execute("CREATE EXTENSION pgcrypto")  # RDS offers it to its master
        conn.execute("SET session_replication_role = replica")  # as RDS lets it
        available = {n for (n,) in conn.execute(
            "SELECT name FROM pg_available_extensions").fetchall()}
        assert not available & set(SUPABASE_ONLY)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE EVENT TRIGGER t ON ddl_command_end "
                         "EXECUTE FUNCTION pg_catalog.pg_event_trigger_ddl_commands()")
