"""The whole Supabase flow as a user runs it, through the `backstop` command: back up the
project as its demoted `postgres` role with the `supabase` profile, then verify and restore it
into the RDS-like server as its non-superuser master, and compare the copy with the project
independently of Backstop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backstop.cli import main
from backstop.connection import Connection
from tests.conftest import KeyPair
from tests.supabase import experiment
from tests.supabase.layout import Source, Target

KEPT = {"public", "auth", "storage"}
USERS = "users=select count(*) from auth.users"


@pytest.fixture
def cli(tmp_path: Path, gpg_keys: KeyPair, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """`backstop ...` with keys and a local store, returning (exit code, parsed --json)."""
    public, private = tmp_path / "recipient.asc", tmp_path / "private.asc"
    public.write_text(gpg_keys.public)
    private.write_text(gpg_keys.private)
    monkeypatch.setenv("BACKSTOP_RECIPIENT_KEYS", str(public))
    monkeypatch.setenv("BACKSTOP_PRIVATE_KEY", str(private))
    monkeypatch.setenv("BACKSTOP_STORE", str(tmp_path / "backups"))

    def run(*argv: str, password: str | None = None) -> tuple[int, Any]:
        monkeypatch.setenv("PGPASSWORD", password or "")
        code = main([*argv, "--json"])
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 or out.strip() else err
    return run


def url(connection: Connection) -> str:
    return (f"postgresql://{connection.user}@/{connection.dbname}?host={connection.host}"
            f"&port={connection.port}&sslmode=disable")


def backup(cli: Any, source: Source, *args: str) -> dict[str, Any]:
    code, made = cli("backup", "--db-url", url(source.postgres), "--database", "quotepro",
                     "--check", USERS, *args, password=source.postgres.password)
    assert code == 0, made
    return dict(made)


def test_the_manifest_of_a_supabase_backup(cli: Any, supabase: Source, major: int) -> None:
    made = backup(cli, supabase, "--profile", "supabase")

    assert made["scope"]["profile"] == "supabase"
    tables = {f"{t['schema']}.{t['name']}" for t in made["tables"]}
    assert {"auth.users", "auth.identities", "storage.objects", "public.quotes"} <= tables
    assert {t.split(".")[0] for t in tables} == KEPT  # no vault, realtime, cron, ...
    roles = {r["name"]: r for r in made["roles"]}
    assert {"anon", "authenticated", "service_role", "supabase_auth_admin"} <= set(roles)
    assert roles["service_role"]["bypassrls"] is True
    assert "password" not in json.dumps(made["roles"]).lower()
    assert {"anon", "authenticated", "service_role", "pg_read_all_data"} <= set(
        roles["postgres"]["member_of"])
    extensions = made["extensions"]
    assert extensions["uuid-ossp"]["schema"] == "extensions"
    assert extensions["uuid-ossp"]["tables"] == ["storage.objects"]  # its id's default
    assert not {"pg_graphql", "supabase_vault", "pgsodium", "pg_net"} & set(extensions)
    if major == 18:
        assert extensions["vector"] == {"version": extensions["vector"]["version"],
                                        "schema": "extensions",
                                        "tables": ["public.document_embeddings"]}


def test_verify_into_rds_as_its_master(cli: Any, supabase: Source, rds: Target) -> None:
    made = backup(cli, supabase, "--profile", "supabase")
    code, result = cli("verify", made["id"], "--scratch-url", url(rds.master),
                       password=rds.master.password)

    assert code == 0, result
    report = result["report"]
    assert report["ok"] and report["tables_matched"] == report["tables_checked"]
    checked = {t["table"] for t in report["tables"]}
    assert {"auth.users", "auth.identities", "storage.objects", "public.profiles"} <= checked
    assert any("policy" in kind for kind in report["compared"])
    skipped = {s["entry"]: s["reason"] for s in report["skipped"]}
    assert "TRIGGER public quotes quote_accepted_webhook" in skipped


def test_restore_into_rds_equals_the_project(cli: Any, supabase: Source, rds: Target) -> None:
    made = backup(cli, supabase, "--profile", "supabase")
    target = rds.database("flow_restore")
    code, result = cli("restore", made["id"], "--target-url", url(target),
                       password=rds.master.password)

    assert code == 0, result
    assert experiment.tables(target, KEPT) == experiment.tables(supabase.postgres, KEPT)
    assert experiment.policies(target, KEPT) == experiment.policies(supabase.postgres, KEPT)
    assert experiment.rls_enabled(target, KEPT) == experiment.rls_enabled(
        supabase.postgres, KEPT)
    with rds.cluster.admin() as conn:  # pg_authid: the server's superuser only
        placeholders = conn.execute(
            "SELECT rolname, rolcanlogin, rolpassword IS NULL FROM pg_authid "
            "WHERE rolname IN ('anon', 'authenticated', 'service_role')").fetchall()
        memberships = conn.execute(
            "SELECT roleid::regrole::text FROM pg_auth_members "
            "WHERE member = 'postgres'::regrole").fetchall()
    assert sorted(placeholders) == [("anon", False, True), ("authenticated", False, True),
                                    ("service_role", False, True)]
    # as in the project, where postgres may act as the API roles
    assert {"anon", "authenticated", "service_role"} <= {r for (r,) in memberships}
    # the one object RDS cannot hold, and the schema every database has already
    assert [s["entry"] for s in result["report"]["skipped"]] == [
        "SCHEMA - public", "TRIGGER public quotes quote_accepted_webhook"]


def test_a_plain_backup_of_a_supabase_project_verifies_with_skips(
        cli: Any, supabase: Source, rds: Target, major: int) -> None:
    made = backup(cli, supabase)
    code, result = cli("verify", made["id"], "--scratch-url", url(rds.master),
                       password=rds.master.password)

    assert code == 0, result
    skipped = {s["entry"] for s in result["report"]["skipped"]}
    assert "EVENT TRIGGER - pgrst_ddl_watch" in skipped
    if major == 18:
        assert {"EXTENSION - pg_graphql", "TABLE DATA vault secrets"} <= skipped


def test_verify_on_the_project_itself_as_postgres(cli: Any, supabase: Source) -> None:
    """No scratch server: the scratch database goes on the Supabase server, made by the
    non-superuser `postgres` (CREATEDB), as `backstop verify latest` does by default."""
    made = backup(cli, supabase, "--profile", "supabase")
    code, result = cli("verify", made["id"], "--db-url", url(supabase.postgres),
                       password=supabase.postgres.password)
    assert code == 0, (result["report"]["problems"], result["report"]["mismatches"],
                       result["report"]["skipped"])


def test_schema_selection_for_any_source(cli: Any, supabase: Source) -> None:
    only = backup(cli, supabase, "--schema", "public", "--schema", "auth")
    assert {t["schema"] for t in only["tables"]} == {"public", "auth"}
    without = backup(cli, supabase, "--exclude-schema", "storage", "--exclude-schema", "vault")
    schemas = {t["schema"] for t in without["tables"]}
    assert "storage" not in schemas and "vault" not in schemas and "auth" in schemas


def test_a_target_is_refused_only_for_extensions_restored_tables_use(
        cli: Any, supabase: Source, rds: Target, major: int) -> None:
    """A project table using a pg_net type cannot live on RDS: refused before anything is
    restored, naming the extension and the table. Without that table the same target is
    fine although the project has pg_net."""
    if major != 18:
        pytest.skip("pg_net is a real (stand-in) extension only on the embedded 18")
    with supabase.cluster.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS uses_net WITH (FORCE)")
        conn.execute("CREATE DATABASE uses_net OWNER postgres")
    with supabase.cluster.admin("uses_net") as conn:
        conn.execute("CREATE SCHEMA extensions")
        conn.execute("CREATE EXTENSION pg_net SCHEMA extensions")
        conn.execute("CREATE TABLE public.webhook_log (id int PRIMARY KEY, "
                     "status net.request_status NOT NULL)")
        conn.execute("ALTER TABLE public.webhook_log OWNER TO postgres")
    source = supabase.postgres.with_dbname("uses_net")
    code, made = cli("backup", "--db-url", url(source), "--database", "usesnet",
                     password=source.password)
    assert code == 0, made
    target = rds.database("refused")
    code, error = cli("restore", made["id"], "--target-url", url(target),
                      password=rds.master.password)
    assert code == 3
    assert "pg_net" in error and "public.webhook_log" in error
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = "
                            "'public'::regnamespace").fetchone() == (0,)


def test_role_timeouts_do_not_end_the_snapshot(cli: Any, supabase: Source) -> None:
    """Supabase sets timeouts on its roles. A backup holds its snapshot's transaction open,
    idle, while pg_dump starts and imports it, and runs its checks and counts in it: the
    session turns both timeouts off, whatever the role's."""
    with supabase.cluster.admin() as conn:
        conn.execute("ALTER ROLE postgres SET idle_in_transaction_session_timeout = '50ms'")
        conn.execute("ALTER ROLE postgres SET statement_timeout = '250ms'")
    try:
        made = backup(cli, supabase, "--profile", "supabase",
                      # a check reads for about a second (sleeping is not a health check)
                      "--check", "slow=select count(*) from generate_series(1, 4000) a, "
                      "generate_series(1, 4000) b")
    finally:
        with supabase.cluster.admin() as conn:
            conn.execute("ALTER ROLE postgres RESET idle_in_transaction_session_timeout")
            conn.execute("ALTER ROLE postgres RESET statement_timeout")
    assert made["status"] == "DONE"
    counted = experiment.tables(supabase.postgres, {"auth"})["auth.users"][0]
    assert str(made["health"]["users"]["value"]) == str(counted)
