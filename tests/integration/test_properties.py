"""Properties over generated inputs (hypothesis), against a real PostgreSQL:

- any schema and table name, written in the command line's --table syntax, names exactly that
  table (never a namesake in another schema, never a table whose name holds the dot);
- a fingerprint is a function of the data alone: equal rows in any physical order, in a
  database whose settings change how values print, give equal fingerprints.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from backstop.tables import measure, relations
from tests.integration.oracle import qualified
from tests.integration.user import User

SHARED_DATABASE = {"deadline": None, "database": None, "suppress_health_check": [
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}

name_part = st.text(
    # no NUL (PostgreSQL has none), no carriage return (pg_dump's filter cannot hold one:
    # refused by name, see test_names)
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    min_size=1, max_size=24,
).filter(lambda s: len(s.encode()) <= 63 and not s.startswith("pg_"))


def cli_form(schema: str, name: str, shout: bool) -> str:
    """The --table syntax: quoted where SQL needs quotes; a simple name may be written in
    capitals, unquoted, and folds back to lower case."""
    form = qualified(schema, name)
    return form.upper() if shout and '"' not in form else form


@pytest.fixture(scope="module")
def backing_up(tmp_path_factory, gpg_keys) -> User:
    keys = tmp_path_factory.mktemp("keys")
    (keys / "public.asc").write_text(gpg_keys.public)
    return User(tmp_path_factory.mktemp("store"), keys / "public.asc", keys / "public.asc")


# Each example is a backup; shrinking a failure would run hundreds, so failures are reported
# as generated, and the explicit examples give readable ones first.
@settings(max_examples=15, phases=[Phase.explicit, Phase.generate], **SHARED_DATABASE)
@given(schema=name_part, name=name_part, shout=st.booleans())
@example(schema="other", name="we.ird", shout=False)
@example(schema="public", name='quo"tes', shout=False)
@example(schema="public", name="a,b", shout=False)
@example(schema="Odd Schema", name="Mixed Case", shout=False)
@example(schema="other", name="quotes", shout=True)
@example(schema="back\\slash £", name="new\nline\\n", shout=False)  # filter-file escapes
def test_any_identifier_in_table_syntax_names_exactly_that_table(backing_up, targets, schema,
                                                                 name, shout):
    db = getattr(test_any_identifier_in_table_syntax_names_exactly_that_table, "db", None)
    if db is None or db.dbname not in targets.made:
        db = targets.empty()
        test_any_identifier_in_table_syntax_names_exactly_that_table.db = db  # type: ignore
    decoys = [("public", name), (schema, name.upper()), (schema, name.lower())]
    joined = f"{schema}.{name}"
    if len(joined.encode()) <= 63:
        decoys.append(("public", joined))
    with db.connect(autocommit=True) as conn:
        for s, n in [(schema, name), *decoys]:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(s)))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id integer)").format(
                sql.Identifier(s, n)))
    result = backing_up.backup(db, "identifiers", "--table", cli_form(schema, name, shout))

    assert result.code == 0, f"--table {cli_form(schema, name, shout)}: {result.said()}"
    assert [(t["schema"], t["name"]) for t in result.json()["tables"]] == [(schema, name)]


FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 0.1, 1e-300, 5e-324]))
REALS = st.floats(width=32)
NUMERICS = st.builds(lambda digits, scale, sign: f"{sign}{digits}.{'0' * scale}",
                     st.integers(0, 10**12), st.integers(0, 6), st.sampled_from(["", "-"])
                     ) | st.sampled_from(["NaN", "Infinity", "-Infinity", "0.000", "1.500"])
EDGE_TIMES = ["infinity", "-infinity", "4713-01-01 00:00:00 BC", "0044-03-15 12:00:00 BC"]
TIMESTAMPTZ = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | \
    st.sampled_from(EDGE_TIMES)
TIMESTAMP = st.datetimes().map(lambda d: d.isoformat()) | st.sampled_from(EDGE_TIMES)
INTERVALS = st.builds(lambda m, d, us: f"{m} mons {d} days {us} microseconds",
                      st.integers(-10**4, 10**4), st.integers(-10**5, 10**5),
                      st.integers(-10**12, 10**12))
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(TEXT, inner, max_size=3), max_leaves=6).map(json.dumps)
ROW = st.tuples(FLOATS.map(repr), REALS.map(repr), NUMERICS, TIMESTAMPTZ, TIMESTAMP,
                INTERVALS, st.binary(max_size=16), TEXT, JSON, JSON, st.dates().map(str),
                st.lists(FLOATS.map(repr), max_size=3).map(lambda a: "{" + ",".join(a) + "}"))
COLUMNS = ("f8 double precision, f4 real, n numeric, ts timestamptz, tsl timestamp, "
           "iv interval, b bytea, txt text, j jsonb, js json, d date, a float8[]")
SETTINGS = st.fixed_dictionaries({
    "DateStyle": st.sampled_from(["ISO, MDY", "SQL, DMY", "German", "Postgres, YMD"]),
    "IntervalStyle": st.sampled_from(["postgres", "sql_standard", "iso_8601",
                                      "postgres_verbose"]),
    "TimeZone": st.sampled_from(["UTC", "Pacific/Chatham", "Asia/Kathmandu",
                                 "America/St_Johns", "Etc/GMT+12"]),
    "extra_float_digits": st.integers(-15, 3).map(str),
    "bytea_output": st.sampled_from(["hex", "escape"]),
})


def fill(conn, rows, order) -> None:
    """The same rows in both databases, loaded in UTC and ISO style; only `order` differs."""
    conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'")
    conn.execute("DROP TABLE IF EXISTS public.values_under_test")
    conn.execute(f"CREATE TABLE public.values_under_test ({COLUMNS})")
    with conn.cursor().copy("COPY public.values_under_test FROM STDIN") as copy:
        for i in order:
            copy.write_row(rows[i])


def fingerprint(connection) -> tuple[int, str | None]:
    with connection.connect() as conn:
        (stats,) = measure(conn, relations(conn, ["public"]), 2**62)
    return stats.rows, stats.fingerprint


@settings(max_examples=60, **SHARED_DATABASE)
@given(rows=st.lists(ROW, max_size=8), data=st.data(), printing=SETTINGS)
def test_fingerprints_depend_on_the_data_alone(targets, rows, data, printing):
    pair = getattr(test_fingerprints_depend_on_the_data_alone, "pair", None)
    if pair is None or pair[0].dbname not in targets.made:
        pair = targets.empty(), targets.empty()
        test_fingerprints_depend_on_the_data_alone.pair = pair  # type: ignore[attr-defined]
    plain, printed = pair
    order = data.draw(st.permutations(range(len(rows))))
    with plain.connect(autocommit=True) as conn:
        fill(conn, rows, range(len(rows)))
    with printed.connect(autocommit=True) as conn:
        fill(conn, rows, order)
        for name, value in printing.items():
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(printed.dbname), sql.Identifier(name), sql.Literal(value)))

    assert fingerprint(printed) == fingerprint(plain), f"settings {printing}"



def test_a_fingerprint_covers_every_column_whatever_the_columns_are_called(targets):
    """Rows that differ only beside a column named like the table's alias in the measuring
    query must still fingerprint differently."""
    one, other = targets.empty(), targets.empty()
    for db, body in ((one, "first"), (other, "second")):
        with db.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE public.values_under_test (id integer, t text, body text)")
            conn.execute("INSERT INTO public.values_under_test VALUES (1, 'same', %s)", [body])
    assert fingerprint(one) != fingerprint(other)


@pytest.mark.parametrize("first, second", [
    # two rows trading one column's values: a per-column sum would not see it
    ("(1, 1, 'a', 'x'), (2, 2, 'b', 'y')", "(1, 1, 'a', 'y'), (2, 2, 'b', 'x')"),
    ("(1, 2, 'a', 'a'), (3, 4, 'a', 'a')", "(1, 4, 'a', 'a'), (3, 2, 'a', 'a')"),
    # a value moved to the other column of its type (integers are hashed natively)
    ("(1, 1, 'a', 'b')", "(1, 1, 'b', 'a')"),
    ("(1, 2, 'a', 'a')", "(2, 1, 'a', 'a')"),
    ("(1, 1, 'a', NULL)", "(1, 1, NULL, 'a')"),
])
def test_rows_that_differ_only_in_where_a_value_is_fingerprint_differently(targets, first,
                                                                           second):
    prints = []
    for rows in (first, second):
        db = targets.empty()
        with db.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE public.values_under_test "
                         "(i integer, j integer, x text, y text)")
            conn.execute(f"INSERT INTO public.values_under_test VALUES {rows}")
        prints.append(fingerprint(db))
    assert prints[0][0] == prints[1][0] and prints[0] != prints[1]
