"""Every corpus database through backup -> verify -> restore in every mode, driven as a user
drives the command line, each result judged by the oracle (tests/integration/oracle.py), which
shares no code with Backstop's own verification.

The rules every case holds Backstop to:
- a backup marked DONE verifies, whatever its scope;
- a restore reproduces what it was asked to restore: rows, definitions, sequences, large
  objects, materialized views, schema, as the oracle sees them;
- a restore touches nothing it was not asked to: every other table of the target is the
  same, byte for byte, before and after;
- a target that holds tables is refused without --confirm, and left as it was;
- exit 0 (VERIFIED) never coincides with a difference the oracle sees.

Each test names the corpus databases it holds Backstop to: those it restores exactly today.
A database joins a test when the engine gets it right; none is expected to fail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from backstop.connection import Connection
from tests.corpus import CORPUS, Database
from tests.integration import oracle
from tests.integration.user import Result, User, judge, table_args

UNTOUCHED = "public.zz_untouched"  # made by drift/common.sql, in no backup
DATA = ("tables", "sequences", "large objects", "matviews")
SCHEMA = ("definitions", "schema")


@dataclasses.dataclass
class Prepared:
    corpus: Database
    source: Connection
    snapshot: oracle.Snapshot
    backups: dict[str, Result]  # full, table, data-only, schema-only

    def backup(self, kind: str) -> str:
        made = self.backups[kind]
        if made.code != 0:
            pytest.fail(f"{kind} backup of {self.corpus.name} failed (exit {made.code}): "
                        f"{made.said()}", pytrace=False)
        backup_id: str = made.json()["id"]
        return backup_id


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory, gpg_keys) -> User:
    keys = tmp_path_factory.mktemp("corpus-keys")
    (keys / "public.asc").write_text(gpg_keys.public)
    (keys / "private.asc").write_text(gpg_keys.private)
    return User(tmp_path_factory.mktemp("corpus-store"), keys / "public.asc",
                keys / "private.asc")


@pytest.fixture(scope="module")
def prepared(corpora, user) -> Callable[[str], Prepared]:
    """Per corpus database, once: the oracle's capture of the source and four backups."""
    made: dict[str, Prepared] = {}

    def get(name: str) -> Prepared:
        if name not in made:
            corpus, source = CORPUS[name], corpora.source(name)
            database = f"corpus-{name}"
            backups = {
                "full": user.backup(source, database),
                "table": user.backup(source, database, "--table", corpus.outside_public),
                "data-only": user.backup(source, database, "--scope", "data-only", "--table",
                                         ",".join(corpus.data_pair)),
                "schema-only": user.backup(source, database, "--scope", "schema-only"),
            }
            made[name] = Prepared(corpus, source, oracle.capture(source), backups)
        return made[name]

    return get


def capture(target: Connection) -> oracle.Snapshot:
    return oracle.capture(target)


# -- backups and their verification ---------------------------------------------------------

@pytest.mark.parametrize(("name", "kind"), [
    ("names", "full"), ("names", "schema-only"), ("partitions", "schema-only"),
    ("objects", "full"), ("objects", "schema-only"), ("rental", "full"),
    ("rental", "schema-only")])
def test_every_backup_marked_done_verifies(prepared, user, name, kind):
    made = prepared(name)
    result = user.run("verify", made.backup(kind), source=made.source)
    if not result.verified:
        pytest.fail(f"verify of the {kind} backup of {name} exited {result.code}: "
                    f"{result.said()}", pytrace=False)


# -- full restores ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["names", "rental"])
def test_full_restore_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("full"), target, "full")
    judge(f"{name}: full restore into an empty database", result,
          oracle.differences(made.snapshot, capture(target)))


@pytest.mark.parametrize("name", ["types", "objects"])
def test_unconfirmed_restores_are_refused_and_change_nothing(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    before = capture(target)
    outcomes = []
    for mode, extra in (("full", []), ("tables", table_args(made.corpus.selection)),
                        ("data-only", []), ("schema-only", [])):
        result = user.restore(made.backup("full"), target, mode, *extra)
        found = oracle.differences(before, capture(target))
        if result.code != 2 or found:
            outcomes.append(f"{mode}: exit {result.code} ({result.said()}), "
                            f"{len(found)} change(s): {'; '.join(found[:3])}")
    assert not outcomes, f"{name}: unconfirmed restores into an occupied target: " + \
        " || ".join(outcomes)


@pytest.mark.parametrize("name", ["names"])
def test_confirmed_full_restore_over_a_drifted_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "full", "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: confirmed full restore over a drifted copy", result,
          oracle.differences(made.snapshot, after, exclude=[UNTOUCHED])
          + oracle.differences(before, after, only=[UNTOUCHED]))


# -- data only ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["names"])
def test_confirmed_data_only_restore_over_a_drifted_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "data-only", "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: confirmed data-only restore over a drifted copy", result,
          oracle.differences(made.snapshot, after, exclude=[UNTOUCHED], kinds=DATA)
          + oracle.differences(before, after, kinds=SCHEMA)
          + oracle.differences(before, after, only=[UNTOUCHED]))


# -- schema only --------------------------------------------------------------------------------

def empty_tables(snapshot: oracle.Snapshot) -> list[str]:
    return [f"table {name}: {t.rows.count} rows after a schema-only restore"
            for name, t in snapshot.tables.items() if t.rows.count]


@pytest.mark.parametrize("name", ["names", "rental"])
def test_schema_only_restore_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("full"), target, "schema-only")
    after = capture(target)
    judge(f"{name}: schema-only restore into an empty database", result,
          oracle.differences(made.snapshot, after, kinds=SCHEMA) + empty_tables(after))


@pytest.mark.parametrize("name", ["names", "types"])
def test_confirmed_schema_only_restore_over_a_drifted_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "schema-only", "--confirm",
                          target.dbname)
    after = capture(target)
    judge(f"{name}: confirmed schema-only restore over a drifted copy", result,
          oracle.differences(made.snapshot, after, exclude=[UNTOUCHED], kinds=SCHEMA)
          + oracle.differences(before, after, only=[UNTOUCHED]))


# -- scoped backups restore on their own ------------------------------------------------------


@pytest.mark.parametrize("name", ["names", "partitions", "rental"])
def test_a_schema_only_backup_restores_the_schema(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("schema-only"), target, "full")
    after = capture(target)
    judge(f"{name}: schema-only backup restored into an empty database", result,
          oracle.differences(made.snapshot, after, kinds=SCHEMA) + empty_tables(after))


def test_a_table_not_in_the_backup_is_bad_input(prepared, user, targets):
    made = prepared("names")
    result = user.restore(made.backup("full"), targets.empty(), "tables", "--table",
                          "other.nosuch")
    assert result.code in (2, 7) and result.err.count("\n") == 1, result.err
    assert "other.nosuch" in result.err
