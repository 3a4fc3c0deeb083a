"""The stock-tool restores in docs/supabase.md, run exactly as written on a Backstop backup of
the Supabase-like project (`--profile supabase`): into the RDS-like server as its master, and
into a new Supabase-like project as its `postgres`. Each runs without an error, every table and
policy equal, and `backstop check` then proves the copy against the backup's manifest, as the
page says to."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backstop import prove
from backstop.backup import BackupRequest, run_backup
from backstop.connection import Connection
from backstop.manifest import Manifest, Scope
from backstop.store import open_store
from tests.conftest import KeyPair, server_directory
from tests.supabase import experiment
from tests.supabase.layout import Source, Target, build_source
from tests.supabase.servers import embedded_bin, server_bin

DOC = Path(__file__).parents[2] / "docs" / "supabase.md"
KEPT = {"public", "auth", "storage"}


def recipe(title: str) -> str:
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
                if title in b]
    return block


def backed_up(source: Source, directory: Path, keys: KeyPair) -> Manifest:
    """A Backstop backup of the project, its object beside where the recipe runs."""
    store = open_store(str(directory / "backups"))
    made = run_backup(BackupRequest("quotepro", scope=Scope(profile="supabase")),
                      connection=source.postgres, store=store, recipient_keys=[keys.public])
    shutil.copy(directory / "backups" / made.key, directory / f"{made.id}.dump.zst.gpg")
    return made


def run(block: str, made: Manifest, target: Connection, keys: KeyPair, directory: Path
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ID": made.id, "GNUPGHOME": str(keys.home),
           "PGPASSWORD": str(target.password),
           "TARGET_URL": f"postgresql://{target.user}@/{target.dbname}?host={target.host}"
                         f"&port={target.port}",
           "PATH": f"{embedded_bin()}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", block], cwd=directory, env=env, capture_output=True,
                          text=True, check=False)


def test_the_documented_stock_restore(supabase: Source, rds: Target, gpg_keys: KeyPair,
                                      tmp_path: Path) -> None:
    made = backed_up(supabase, tmp_path, gpg_keys)
    target = rds.database("stock_recipe")

    done = run(recipe("Restore a `--profile supabase` backup into plain PostgreSQL"), made,
               target, gpg_keys, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr
    assert experiment.tables(target, KEPT) == experiment.tables(supabase.postgres, KEPT)
    assert experiment.policies(target, KEPT) == experiment.policies(supabase.postgres, KEPT)
    assert experiment.rls_enabled(target, KEPT) == experiment.rls_enabled(
        supabase.postgres, KEPT)
    with target.connect() as conn:
        triggers = {t for (t,) in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()}
    assert {"on_auth_user_created", "quote_accepted_webhook", "update_objects_updated_at"
            } <= triggers
    report = prove.check(made, target=target)
    assert report.ok, (report.problems, report.mismatches)
    assert {t["table"] for t in report.tables} >= {"auth.users", "auth.identities"}


@pytest.fixture
def new_project(major: int) -> Iterator[Source]:
    """A new Supabase-like project: what Supabase creates, nothing of the owner's."""
    project = build_source(server_directory(f"new{major}"), server_bin(major), new=True)
    try:
        yield project
    finally:
        project.cluster.stop()


def test_the_documented_restore_into_a_new_project(supabase: Source, new_project: Source,
                                                   gpg_keys: KeyPair, tmp_path: Path) -> None:
    made = backed_up(supabase, tmp_path, gpg_keys)
    target = new_project.postgres

    done = run(recipe("into a new Supabase project"), made, target, gpg_keys, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr
    own = {"auth.schema_migrations", "storage.migrations"}  # the new project's records
    source, copy = (experiment.tables(db, KEPT) for db in (supabase.postgres, target))
    assert {t: v for t, v in copy.items() if t not in own} == {
        t: v for t, v in source.items() if t not in own}
    assert experiment.policies(target, KEPT) == experiment.policies(supabase.postgres, KEPT)
    with target.connect() as conn:  # one profile per user: the sign-up trigger did not fire
        assert conn.execute("SELECT count(*) = count(DISTINCT id) FROM public.profiles"
                            ).fetchone() == (True,)
        triggers = {t for (t,) in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass").fetchall()}
    assert "on_auth_user_created" in triggers
    defaults = "SELECT defaclobjtype, defaclacl::text FROM pg_default_acl WHERE defaclrole = " \
               "'postgres'::regrole AND defaclnamespace = 'public'::regnamespace ORDER BY 1"
    with supabase.postgres.connect() as conn, target.connect() as copied:
        assert copied.execute(defaults).fetchall() == conn.execute(defaults).fetchall()
    restored = [t.table.qualified for t in made.tables if t.table.qualified not in own]
    report = prove.check(made, target=target, tables=restored)
    assert report.ok, (report.problems, report.mismatches)
    assert len(report.tables) == len(restored)
