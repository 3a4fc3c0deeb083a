"""The restore rules of backstop.rules, proved with stock pg_restore as the RDS-like master
(CREATEDB CREATEROLE, no superuser): the entries the rules skip are exactly the entries that
fail, and everything else restores in one transaction without an error, every kept table
equal to its source and every policy present."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from backstop import rules
from backstop.archive import Entry
from tests.conftest import server_directory
from tests.supabase import experiment
from tests.supabase.layout import Source, Target, build_target
from tests.supabase.servers import server_bin


@pytest.fixture(scope="module")
def rds(major: int) -> Iterator[Target]:
    """An RDS-like server of these experiments' own: they pre-create `postgres` there, a role
    its master cannot act for, which other tests' servers must not have."""
    target = build_target(server_directory(f"rules{major}"), server_bin(major))
    try:
        yield target
    finally:
        target.cluster.stop()


# An extension the RDS-like server offers and the archive holds, that no table uses,
# pre-installed by the server's own superuser.
FOREIGN = "pgcrypto"


def unexplained(entries: list[Entry], outcome: experiment.Outcome, verdicts: dict[int, str]
                ) -> dict[str, list[str]]:
    """For a failure message: entries that failed but no rule skips, and the reverse."""
    return {"failed, not skipped": [rules.name(e) for e in entries if e.dump_id in
                                    outcome.failed and e.dump_id not in verdicts],
            "skipped, did not fail": [rules.name(e) for e in entries if e.dump_id in verdicts
                                      and e.dump_id not in outcome.failed],
            "errors": outcome.errors}


def needs_schema(entries: list[Entry]) -> bool:
    """Whether the archive puts extensions in schema `extensions` without creating it."""
    return not any(e.desc == "SCHEMA" and e.tag == "extensions" for e in entries)


def run(source: Source, rds: Target, archive: Path, name: str, major: int
        ) -> tuple[list[Entry], dict[int, str], experiment.Outcome]:
    """Restore every entry as the master; return the entries, the rules' verdicts, and what
    failed."""
    entries = experiment.entries(archive)
    everything = experiment.prepare(rds, f"{name}_all", source, foreign_role="postgres",
                                    foreign_extension=FOREIGN,
                                    extensions_schema=needs_schema(entries))
    facts = experiment.facts(everything, archive, source)
    verdicts = {e.dump_id: rule.name for e in entries
                if (rule := rules.skipped(e, facts)) is not None}
    return entries, verdicts, experiment.restore(archive, everything)


def check_the_rest(source: Source, rds: Target, archive: Path, name: str, major: int,
                   entries: list[Entry], verdicts: dict[int, str]) -> None:
    kept = [e for e in entries if e.dump_id not in verdicts]
    target = experiment.prepare(rds, f"{name}_kept", source, foreign_role="postgres",
                                foreign_extension=FOREIGN,
                                extensions_schema=needs_schema(entries))
    experiment.script_restore(archive, target, kept)  # raises on the first error

    schemas = {e.namespace for e in kept if e.desc == "TABLE DATA"}
    assert experiment.tables(target, schemas) == experiment.tables(source.postgres, schemas)
    assert experiment.policies(target, schemas) == experiment.policies(source.postgres, schemas)
    assert experiment.rls_enabled(target, schemas) == experiment.rls_enabled(
        source.postgres, schemas)


def test_a_whole_database_archive(supabase: Source, rds: Target, major: int,
                                  tmp_path: Path) -> None:
    """The `plain` profile on a Supabase database: pg_dump of everything, as `postgres`."""
    archive = experiment.dump(supabase.postgres, tmp_path / "plain.dump")
    entries, verdicts, outcome = run(supabase, rds, archive, "rules_plain", major)

    assert outcome.failed == set(verdicts), unexplained(entries, outcome, verdicts)
    expected = {"event-trigger", "default-privileges", "extension-not-owned"}
    # on 15 Supabase's own extensions are emulated, and only 15 dumps Vault's label
    expected |= {"extension-missing"} if major == 18 else {"security-label"}
    assert set(verdicts.values()) == expected
    skipped = {rules.name(e) for e in entries if e.dump_id in verdicts}
    assert "EVENT TRIGGER - pgrst_ddl_watch" in skipped
    assert "DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES" in skipped  # for postgres
    if major == 18:
        assert {"EXTENSION - pg_graphql", "TABLE DATA vault secrets",
                "ACL - SCHEMA net"} <= skipped
    check_the_rest(supabase, rds, archive, "rules_plain", major, entries, verdicts)


def test_a_supabase_profile_archive(supabase: Source, rds: Target, major: int,
                                    tmp_path: Path) -> None:
    """The `supabase` profile: kept schemas and travelling extensions by name. No event
    trigger, publication, label or Supabase-only extension is in the archive at all; what
    remains to skip is the Database Webhook and another role's default privileges."""
    args = experiment.supabase_dump_args(supabase.postgres)
    archive = experiment.dump(supabase.postgres, tmp_path / "supabase.dump", *args)
    entries, verdicts, outcome = run(supabase, rds, archive, "rules_supabase", major)

    assert outcome.failed == set(verdicts), unexplained(entries, outcome, verdicts)
    assert set(verdicts.values()) == {"existing-schema", "default-privileges",
                                      "trigger-function-missing", "extension-not-owned"}
    kinds = {e.desc for e in entries}
    assert not kinds & {"EVENT TRIGGER", "PUBLICATION", "PUBLICATION TABLE", "SECURITY LABEL"}
    assert {e.namespace for e in entries} - {None} == {"public", "auth", "storage"}
    assert {e.tag for e in entries if e.desc == "EXTENSION"} == (
        {"vector", "uuid-ossp", "pgcrypto"} if major == 18 else {"uuid-ossp", "pgcrypto"})
    assert "TRIGGER public quotes quote_accepted_webhook" in {
        rules.name(e) for e in entries if e.dump_id in verdicts}
    check_the_rest(supabase, rds, archive, "rules_supabase", major, entries, verdicts)


def test_publishing_every_table_needs_a_superuser(rds: Target, tmp_path: Path) -> None:
    """A source that publishes all tables (not something Supabase's `postgres` can create)."""
    with rds.cluster.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS pubsource WITH (FORCE)")
        conn.execute("CREATE DATABASE pubsource")
    with rds.cluster.admin("pubsource") as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("CREATE PUBLICATION cdc FOR ALL TABLES")
        conn.execute("CREATE PUBLICATION selected FOR TABLE t")
    source = dataclasses.replace(rds.master, user="rdsadmin", password=None, dbname="pubsource")
    archive = experiment.dump(source, tmp_path / "pub.dump")
    entries = experiment.entries(archive)
    target = rds.database("pubtarget")
    facts = rules.Facts(superuser=False, available_extensions=frozenset(),
                        default_privilege_roles=frozenset())
    verdicts = {e.dump_id for e in entries if rules.skipped(e, facts)}

    outcome = experiment.restore(archive, target)
    assert outcome.failed == verdicts
    assert [e.tag for e in entries if e.dump_id in verdicts] == ["cdc"]
