"""The oracle must see every difference the corpus matrix relies on it to see, say what it is,
and see none between equal databases however their rows are stored or their values print."""

from __future__ import annotations

import psycopg
import pytest

from tests.integration import oracle


def run(pg, target, statements: str) -> None:
    pg.sql(target, statements)


@pytest.fixture
def objects(pg, corpora, targets):
    """The `objects` corpus database and a faithful copy of it, captured."""
    source = corpora.source("objects")
    return oracle.capture(source), targets.copy("objects")


def after(pg, copy, statements: str) -> oracle.Snapshot:
    run(pg, copy, statements)
    return oracle.capture(copy)


def test_equal_databases_have_no_differences(objects):
    expected, copy = objects
    assert oracle.differences(expected, oracle.capture(copy)) == []


def test_a_changed_row_is_named_with_its_old_and_new_form(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, """
        ALTER TABLE public.quotes DISABLE TRIGGER quotes_audit;
        UPDATE public.quotes SET total = 12345.67 WHERE id = 7;
        ALTER TABLE public.quotes ENABLE TRIGGER quotes_audit"""))
    (line,) = found
    assert line.startswith("table public.quotes: same row count (60), different rows")
    assert "missing row '7\\t8\\t69.93" in line and "unexpected row '7\\t8\\t12345.67" in line


def test_a_value_swapped_between_two_rows(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, """
        UPDATE sales.customers c SET name = s.name FROM sales.customers s
        WHERE (c.id, s.id) IN ((1, 2), (2, 1))"""), kinds=["tables"])
    (line,) = found
    assert line.startswith("table sales.customers: same row count (25), different rows")
    assert line.count("missing row") == 2 and line.count("unexpected row") == 2


def test_a_moved_sequence(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, "SELECT nextval('audit.log_id_seq')"))
    assert found == ["sequence audit.log_id_seq: (last_value, is_called) (63, True), "
                     "expected (62, True)"]


def test_a_missing_index(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, "DROP INDEX public.quotes_customer"))
    assert any(line.startswith("table public.quotes definition: missing: index "
                               "quotes_customer: CREATE INDEX") for line in found)
    assert "schema INDEX public.quotes_customer: missing" in found


def test_a_dropped_policy(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, "DROP POLICY tenant_isolation ON "
                                                         "public.quotes"))
    assert any(line.startswith("table public.quotes definition: missing: policy "
                               "tenant_isolation") for line in found)
    assert "schema POLICY public.quotes tenant_isolation: missing" in found


def test_a_revoked_grant(pg, objects, corpora):
    expected, copy = objects
    reader = corpora.roles.names["reader"]
    found = oracle.differences(expected, after(
        pg, copy, f'REVOKE SELECT (total) ON public.quotes FROM "{reader}"'))
    assert any(line.startswith("table public.quotes definition: missing: column total")
               for line in found)
    assert "schema ACL public.COLUMN quotes.total: missing" in found


def test_large_objects_and_materialized_views(pg, objects):
    expected, copy = objects
    found = oracle.differences(expected, after(pg, copy, """
        SELECT lo_unlink(424203); SELECT lo_put(424201, 0, 'J');
        REFRESH MATERIALIZED VIEW sales.totals_mv WITH NO DATA;
        ALTER TABLE public.quotes DISABLE TRIGGER quotes_audit;
        UPDATE public.quotes SET total = 0 WHERE id = 1;
        ALTER TABLE public.quotes ENABLE TRIGGER quotes_audit;
        REFRESH MATERIALIZED VIEW sales.pending_mv"""), kinds=["large objects", "matviews"])
    assert found[0].startswith("large object 424201: content md5 ")
    assert found[1:] == ["large object 424203: missing",
                         "matview sales.pending_mv: populated, expected not populated",
                         "matview sales.totals_mv: not populated, expected populated"]


def test_only_and_exclude_limit_what_is_compared(pg, objects):
    expected, copy = objects
    changed = after(pg, copy, """
        UPDATE public.line_items SET qty = qty + 1 WHERE quote_id = 3;
        DROP INDEX public.quotes_customer;
        SELECT nextval('audit.log_id_seq')""")
    assert oracle.differences(expected, changed, only=["sales.customers"]) == []
    assert [line.split(":")[0] for line in oracle.differences(
        expected, changed, exclude=["public.line_items", "public.quotes", "audit.log"])] == []
    everything = oracle.differences(expected, changed)
    assert {line.split(":")[0] for line in everything} == {
        "table public.line_items", "table public.quotes definition",
        "schema INDEX public.quotes_customer", "schema COMMENT public.INDEX quotes_customer",
        "sequence audit.log_id_seq"}


def test_physical_order_and_printing_settings_do_not_matter(pg, corpora, targets):
    """The settings corpus prints values its own way (database- and role-level settings);
    the oracle pins its session, so a copy without those settings, its rows rewritten in
    another physical order, compares equal."""
    source = corpora.source("settings")
    copy = targets.copy("settings")
    pg.sql(copy, f'ALTER DATABASE "{copy.dbname}" RESET ALL')
    run(pg, copy, """
        CREATE TEMP TABLE f AS SELECT * FROM edge.floats ORDER BY id DESC;
        DELETE FROM edge.floats; INSERT INTO edge.floats SELECT * FROM f;
        CREATE TEMP TABLE t AS SELECT * FROM edge.times ORDER BY random();
        DELETE FROM edge.times; INSERT INTO edge.times SELECT * FROM t""")
    def date_style(connection):  # a plain session: Backstop's own pins its settings
        with psycopg.connect(connection.conninfo(), password=connection.password) as conn:
            return conn.execute("SHOW DateStyle").fetchone()

    assert date_style(copy) == ("German, DMY",)
    assert date_style(pg.connection("postgres")) != ("German, DMY",)
    assert oracle.differences(oracle.capture(source), oracle.capture(copy)) == []


def test_partitions_are_found_at_every_depth(corpora):
    snapshot = oracle.capture(corpora.source("partitions"), schema=False)
    assert snapshot.partitions("part.events") == {
        "part.events", "part.events_2024", "part.events_2025", "part.events_2025_click",
        "part.events_2025_other", "part.events_default"}
    assert snapshot.tables["part.events"].rows.count == 0  # a parent holds no rows itself
    assert snapshot.tables["public.vehicles"].rows.count == 3  # ONLY: its own rows


def test_quoting_follows_sql(corpora):
    snapshot = oracle.capture(corpora.source("names"), schema=False)
    assert {'other."we.ird"', '"we.ird".quotes', 'public."other.quotes"', 'public."quo""tes"',
            '"Odd Schema"."Mixed Case Table"', '"ünï"."tàble ü"', "we.ird", 'public."a,b"',
            "public.quotes", "other.quotes", 'public."Quotes"'} <= set(snapshot.tables)
    assert snapshot.tables['"Odd Schema"."Mixed Case Table"'].sequences == (
        '"Odd Schema"."Seq.Name"',)
