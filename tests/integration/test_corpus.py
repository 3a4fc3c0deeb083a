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
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from backstop.connection import Connection
from backstop.localdb import LocalServer
from tests.conftest import throwaway
from tests.corpus import CORPUS, Database
from tests.integration import oracle
from tests.integration.user import Result, User, judge, table_args

NAMES = list(CORPUS)
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

    def selection(self, names: tuple[str, ...]) -> set[str]:
        """What a restore of `names` must restore: each table and, for a partitioned table,
        its partitions (an INHERITS parent does not bring its children)."""
        return {t for name in names for t in self.snapshot.partitions(name)}


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


def outside_references(snapshot: oracle.Snapshot, selected: set[str]) -> set[tuple[str, str]]:
    """(table, constraint) for each foreign key of a selected table that references a table
    outside the selection: it cannot hold in a target that lacks the other table."""
    found = set()
    for name in selected:
        for line in snapshot.tables[name].definition:
            m = re.match(r"constraint (.+?): FOREIGN KEY .* REFERENCES (.+?)\(", line)
            if m and m[2] not in selected:
                found.add((name, m[1]))
    return found


def excuse_reported(found: list[str], references: set[tuple[str, str]],
                    result: Result) -> list[str]:
    """Drop the differences that are such foreign keys, when Backstop named them."""
    said = result.out + result.err
    return [line for line in found
            if not any(line.startswith(f"table {t} definition: missing: constraint {c}:")
                       and c.strip('"') in said for t, c in references)]


# -- backups and their verification ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["full", "table", "data-only", "schema-only"])
@pytest.mark.parametrize("name", NAMES)
def test_every_backup_marked_done_verifies(prepared, user, name, kind):
    made = prepared(name)
    result = user.run("verify", made.backup(kind), source=made.source)
    if not result.verified:
        pytest.fail(f"verify of the {kind} backup of {name} exited {result.code}: "
                    f"{result.said()}", pytrace=False)


# -- full restores ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_full_restore_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("full"), target, "full")
    judge(f"{name}: full restore into an empty database", result,
          oracle.differences(made.snapshot, capture(target)))


@pytest.mark.parametrize("name", NAMES)
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


@pytest.mark.parametrize("name", NAMES)
def test_confirmed_full_restore_over_a_drifted_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "full", "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: confirmed full restore over a drifted copy", result,
          oracle.differences(made.snapshot, after, exclude=[UNTOUCHED])
          + oracle.differences(before, after, only=[UNTOUCHED]))


# -- selected tables --------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_tables_restore_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    selected = made.selection(made.corpus.selection)
    result = user.restore(made.backup("full"), target, "tables",
                          *table_args(made.corpus.selection))
    after = capture(target)
    found = oracle.differences(made.snapshot, after, only=selected)
    found += [f"table {t}: restored but not selected" for t in sorted(set(after.tables)
                                                                       - selected)]
    judge(f"{name}: tables {', '.join(made.corpus.selection)} into an empty database",
          result, excuse_reported(found, outside_references(made.snapshot, selected), result))


@pytest.mark.parametrize("name", NAMES)
def test_confirmed_tables_restore_touches_only_those_tables(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    selected = made.selection(made.corpus.selection)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "tables",
                          *table_args(made.corpus.selection), "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: confirmed tables {', '.join(made.corpus.selection)} over a drifted copy",
          result, oracle.differences(made.snapshot, after, only=selected)
          + oracle.differences(before, after, exclude=selected))


# -- data only ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
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


@pytest.mark.parametrize("name", NAMES)
def test_data_only_restore_of_some_tables(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    selected = set(made.corpus.data_pair)
    before = capture(target)
    result = user.restore(made.backup("full"), target, "data-only",
                          *table_args(made.corpus.data_pair), "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: data-only restore of {', '.join(sorted(selected))} over a drifted copy",
          result, oracle.differences(made.snapshot, after, only=selected, kinds=DATA)
          + oracle.differences(before, after, exclude=selected)
          + oracle.differences(before, after, only=selected, kinds=SCHEMA))


# -- schema only --------------------------------------------------------------------------------

def empty_tables(snapshot: oracle.Snapshot) -> list[str]:
    return [f"table {name}: {t.rows.count} rows after a schema-only restore"
            for name, t in snapshot.tables.items() if t.rows.count]


@pytest.mark.parametrize("name", NAMES)
def test_schema_only_restore_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("full"), target, "schema-only")
    after = capture(target)
    judge(f"{name}: schema-only restore into an empty database", result,
          oracle.differences(made.snapshot, after, kinds=SCHEMA) + empty_tables(after))


@pytest.mark.parametrize("name", NAMES)
def test_schema_only_restore_of_one_table(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    selected = made.selection((made.corpus.outside_public,))
    result = user.restore(made.backup("full"), target, "schema-only",
                          "--table", made.corpus.outside_public)
    after = capture(target)
    found = oracle.differences(made.snapshot, after, only=selected, kinds=["definitions"])
    above = made.snapshot.ancestors(made.corpus.outside_public)  # a partition needs them
    found += [f"table {t}: restored but not selected" for t in sorted(set(after.tables)
                                                                       - selected)
              if t not in above or t not in result.out]
    judge(f"{name}: schema-only restore of {made.corpus.outside_public} into an empty "
          "database", result, excuse_reported(found + empty_tables(after),
                                              outside_references(made.snapshot, selected),
                                              result))


@pytest.mark.parametrize("name", NAMES)
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

@pytest.mark.parametrize("name", NAMES)
def test_a_table_backup_restores_into_an_empty_database(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    selected = made.selection((made.corpus.outside_public,))
    result = user.restore(made.backup("table"), target, "full")
    found = oracle.differences(made.snapshot, capture(target), only=selected)
    judge(f"{name}: backup --table {made.corpus.outside_public} restored into an empty "
          "database", result, excuse_reported(found, outside_references(made.snapshot,
                                                                         selected), result))


@pytest.mark.parametrize("name", NAMES)
def test_a_table_backup_replaces_only_its_table(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    selected = made.selection((made.corpus.outside_public,))
    before = capture(target)
    result = user.restore(made.backup("table"), target, "full", "--confirm", target.dbname)
    after = capture(target)
    judge(f"{name}: backup --table {made.corpus.outside_public} restored over a drifted copy",
          result, oracle.differences(made.snapshot, after, only=selected)
          + oracle.differences(before, after, exclude=selected))


@pytest.mark.parametrize("name", NAMES)
def test_a_data_only_backup_reloads_only_its_tables(prepared, user, targets, name):
    made = prepared(name)
    target = targets.copy(name, drift=True)
    selected = set(made.corpus.data_pair)
    before = capture(target)
    result = user.restore(made.backup("data-only"), target, "data-only", "--confirm",
                          target.dbname)
    after = capture(target)
    judge(f"{name}: data-only backup of {', '.join(sorted(selected))} over a drifted copy",
          result, oracle.differences(made.snapshot, after, only=selected, kinds=DATA)
          + oracle.differences(before, after, exclude=selected)
          + oracle.differences(before, after, only=selected, kinds=SCHEMA))


@pytest.mark.parametrize("name", NAMES)
def test_a_schema_only_backup_restores_the_schema(prepared, user, targets, name):
    made = prepared(name)
    target = targets.empty()
    result = user.restore(made.backup("schema-only"), target, "full")
    after = capture(target)
    judge(f"{name}: schema-only backup restored into an empty database", result,
          oracle.differences(made.snapshot, after, kinds=SCHEMA) + empty_tables(after))


# -- check: a read-only proof of an existing database -----------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_check_proves_an_equal_database_and_refutes_a_drifted_one(prepared, user, targets,
                                                                  name):
    made = prepared(name)
    backup_id = made.backup("full")
    copy = targets.copy(name)
    drifted = targets.copy(name, drift=True)
    before = capture(made.source)
    on_source = user.run("check", backup_id, source=made.source, target=made.source)
    on_copy = user.run("check", backup_id, target=copy)
    on_drifted = user.run("check", backup_id, target=drifted)
    problems = [f"{what}: exit {r.code}, expected {code} ({r.said()})"
                for what, r, code in (("the source", on_source, 0), ("a copy", on_copy, 0),
                                      ("a drifted copy", on_drifted, 9)) if r.code != code]
    problems += [f"check changed the source: {line}"
                 for line in oracle.differences(before, capture(made.source))]
    assert not problems, f"{name}: backstop check: " + "; ".join(problems)


TAMPERING = {
    "a changed row": "ALTER TABLE public.quotes DISABLE TRIGGER quotes_audit; "
                     "UPDATE public.quotes SET total = total + 0.01 WHERE id = 7; "
                     "ALTER TABLE public.quotes ENABLE TRIGGER quotes_audit",
    "a dropped index": "DROP INDEX public.quotes_customer",
    "a dropped policy": "DROP POLICY tenant_isolation ON public.quotes",
    "a moved sequence": "SELECT setval('audit.log_id_seq', 1000)",
    "a deleted large object": "SELECT lo_unlink(424202)",
    "an unpopulated matview": "REFRESH MATERIALIZED VIEW sales.totals_mv WITH NO DATA",
    "a revoked grant": 'REVOKE SELECT ON sales.bookings FROM "{reader}"',
    "a dropped trigger": "DROP TRIGGER quotes_audit ON public.quotes",
    "a dropped check constraint": "ALTER TABLE sales.customers DROP CONSTRAINT "
                                  "credit_not_negative",
    "a changed value beside a column named t": "UPDATE public.notes SET body = 'changed' "
                                               "WHERE id = 1",
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_check_fails_on_every_tampering(prepared, user, targets, corpora, pg, tampering):
    made = prepared("objects")
    copy = targets.copy("objects")
    pg.sql(copy, TAMPERING[tampering].format(**corpora.roles.names))
    assert oracle.differences(made.snapshot, capture(copy)), "the tampering changed nothing"
    result = user.run("check", made.backup("full"), target=copy)
    assert result.code == 9 and not result.verified, (
        f"backstop check after {tampering}: exit {result.code}: {result.said()}")


# -- names on the command line ------------------------------------------------------------------

def test_a_bare_name_in_two_schemas_is_refused_naming_both(prepared, user, targets):
    made = prepared("names")
    backup = user.backup(made.source, "corpus-names", "--table", "quotes")
    restore = user.restore(made.backup("full"), targets.empty(), "tables", "--table", "quotes")
    for what, result in (("backup", backup), ("restore", restore)):
        assert result.code == 2, f"{what} --table quotes: exit {result.code}: {result.said()}"
        assert "public.quotes" in result.err and "other.quotes" in result.err, result.err


def test_unquoted_names_fold_to_lower_case(prepared, user):
    made = prepared("names")
    result = user.backup(made.source, "corpus-names", "--table", "Other.Quotes", "--table",
                         'public."Quotes"')
    assert result.code == 0, result.said()
    assert sorted((t["schema"], t["name"]) for t in result.json()["tables"]) == [
        ("other", "quotes"), ("public", "Quotes")]


def test_a_table_not_in_the_backup_is_bad_input(prepared, user, targets):
    made = prepared("names")
    result = user.restore(made.backup("full"), targets.empty(), "tables", "--table",
                          "other.nosuch")
    assert result.code in (2, 7) and result.err.count("\n") == 1, result.err
    assert "other.nosuch" in result.err


# -- a server where the source's roles do not exist -------------------------------------------

@pytest.fixture(scope="module")
def bare_server():
    server = LocalServer(Path(tempfile.mkdtemp(prefix="backstop-bare-")) / "pgdata")
    throwaway(server)
    yield server
    server.stop()


def test_restore_where_the_granted_roles_do_not_exist(prepared, user, bare_server):
    """The objects corpus grants to roles that exist only on the source's server. A restore
    elsewhere either reproduces everything or says which roles are missing: never exit 0
    with grants silently gone."""
    made = prepared("objects")
    target = bare_server.create_database("objects_elsewhere")
    result = user.restore(made.backup("full"), target, "full")
    found = oracle.differences(made.snapshot, capture(target))
    if result.code != 0:
        reader = made.snapshot.tables["public.quotes"].definition  # roles named in grants
        assert any(role in result.out + result.err for role in corpora_roles(reader)), (
            f"exit {result.code} without naming the missing roles: {result.said()}")
    else:
        judge("objects: full restore into a server without the source's roles", result, found)


def corpora_roles(definition: tuple[str, ...]) -> set[str]:
    return {role for line in definition for role in re.findall(r"'(corpus\d+x\d+_\w+)", line)}


def test_reports_list_the_kinds_compared(prepared, user):
    made = prepared("objects")
    result = user.run("verify", made.backup("full"), "--json", source=made.source)
    assert result.code == 0, result.said()
    report = result.json()["report"]
    compared = " | ".join(str(v) for v in report.get("compared", []))
    missing = [kind for kind in ("table", "sequence", "large object", "materialized view",
                                 "schema") if kind not in compared.lower()]
    assert not missing, f"the report's 'compared' ({compared}) does not name {missing}"
