-- Objects around the tables: foreign keys (across schemas, self-referencing, deferrable,
-- ON DELETE CASCADE), check and exclusion constraints, triggers (one writes an audit row into
-- another table, so a data-only restore that fires it double-writes), row-level security with
-- FORCE, grants to roles that exist only on the source server (table, column, schema,
-- sequence, function, large object, default privileges), comments, views, materialized views
-- (one populated, one WITH NO DATA), large objects, and a column named like a query's
-- table alias (`t`).
-- psql variables: reader, writer and odd_role name the roles (made by the loader).

CREATE SCHEMA sales;
CREATE SCHEMA audit;

CREATE TABLE audit.log (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    op text NOT NULL,
    row_id integer
);
CREATE FUNCTION audit.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.log (table_name, op, row_id) VALUES (TG_TABLE_NAME, TG_OP, NEW.id);
    RETURN NEW;
END
$$;
CREATE FUNCTION audit.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated := NEW.updated + interval '1 day';
    RETURN NEW;
END
$$;

CREATE TABLE sales.customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    referred_by integer REFERENCES sales.customers (id) ON DELETE SET NULL,
    tenant text NOT NULL,
    credit numeric(10, 2) NOT NULL DEFAULT 0 CONSTRAINT credit_not_negative CHECK (credit >= 0),
    updated timestamptz NOT NULL DEFAULT '2025-01-01 00:00:00+00'
);
CREATE TRIGGER customers_touch BEFORE UPDATE ON sales.customers
    FOR EACH ROW EXECUTE FUNCTION audit.touch();
INSERT INTO sales.customers (id, name, referred_by, tenant, credit)
SELECT g, 'customer ' || g, CASE WHEN g > 1 THEN g / 2 END, 't' || g % 3, g * 10
FROM generate_series(1, 25) g;
UPDATE sales.customers SET credit = credit + 1 WHERE id % 5 = 0;

CREATE TABLE public.quotes (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES sales.customers (id) ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    tenant text NOT NULL,
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent', 'won', 'lost'))
);
CREATE INDEX quotes_customer ON public.quotes (customer_id);
CREATE UNIQUE INDEX quotes_open_per_customer ON public.quotes (customer_id, total)
    WHERE status = 'draft';
CREATE TRIGGER quotes_audit AFTER INSERT OR UPDATE ON public.quotes
    FOR EACH ROW EXECUTE FUNCTION audit.record();
INSERT INTO public.quotes
SELECT g, g % 25 + 1, g * 9.99, 't' || (g % 25 + 1) % 3,
       (ARRAY['draft', 'sent', 'won', 'lost'])[g % 4 + 1]
FROM generate_series(1, 60) g;
UPDATE public.quotes SET status = 'won' WHERE id IN (4, 8);

CREATE TABLE public.line_items (
    quote_id integer NOT NULL REFERENCES public.quotes (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    n integer NOT NULL,
    sku text NOT NULL,
    qty integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (quote_id, n)
);
INSERT INTO public.line_items SELECT q, n, 'SKU-' || q * 10 + n, n
FROM generate_series(1, 60) q, generate_series(1, 3) n;

CREATE TABLE sales.bookings (
    id integer PRIMARY KEY,
    customer_id integer REFERENCES sales.customers (id),
    during tsrange NOT NULL,
    CONSTRAINT no_double_booking EXCLUDE USING gist (during WITH &&)
);
INSERT INTO sales.bookings
SELECT g, g % 25 + 1, tsrange(timestamp '2025-01-01' + g * interval '1 hour',
                              timestamp '2025-01-01' + (g + 1) * interval '1 hour')
FROM generate_series(1, 20) g;

-- Row-level security, enforced for the owner too.
ALTER TABLE public.quotes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quotes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.quotes
    USING (tenant = current_setting('app.tenant', true));
CREATE POLICY reader_sees_sent ON public.quotes FOR SELECT TO :"reader"
    USING (status <> 'draft');
ALTER TABLE sales.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY writer_edits ON sales.customers FOR UPDATE TO :"writer"
    USING (true) WITH CHECK (credit < 100000);

-- Grants to roles that exist only where the source lives.
GRANT USAGE ON SCHEMA sales TO :"reader", :"odd_role";
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO :"reader";
GRANT SELECT (id, total, status) ON public.quotes TO :"reader";
GRANT INSERT, UPDATE ON public.line_items TO :"writer" WITH GRANT OPTION;
GRANT SELECT, DELETE ON sales.customers TO :"odd_role";
GRANT USAGE ON SEQUENCE audit.log_id_seq TO :"writer";
REVOKE EXECUTE ON FUNCTION audit.record() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.record() TO :"writer";
REVOKE ALL ON public.line_items FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO :"reader";

COMMENT ON SCHEMA sales IS 'Customers and bookings';
COMMENT ON TABLE public.quotes IS 'Quotes; a semicolon, ''quotes'' and a
second line';
COMMENT ON COLUMN sales.customers.name IS 'ünïcode comment';
COMMENT ON CONSTRAINT credit_not_negative ON sales.customers IS 'no debt';
COMMENT ON INDEX public.quotes_customer IS 'for the customer page';
COMMENT ON TRIGGER quotes_audit ON public.quotes IS 'every change is logged';
COMMENT ON POLICY tenant_isolation ON public.quotes IS 'one tenant per session';

CREATE VIEW sales.customer_totals AS
SELECT c.id, c.name, count(q.id) AS quotes, coalesce(sum(q.total), 0) AS total
FROM sales.customers c LEFT JOIN public.quotes q ON q.customer_id = c.id
GROUP BY c.id, c.name;
GRANT SELECT ON sales.customer_totals TO :"reader";
CREATE MATERIALIZED VIEW sales.totals_mv AS
SELECT customer_id, count(*) AS quotes, sum(total) AS total FROM public.quotes
GROUP BY customer_id;
CREATE UNIQUE INDEX totals_mv_customer ON sales.totals_mv (customer_id);
CREATE MATERIALIZED VIEW sales.pending_mv AS
SELECT id, total FROM public.quotes WHERE status = 'sent' WITH NO DATA;

-- Large objects: fixed OIDs, one empty, one binary, one referenced from a table, one with a
-- comment and a grant.
SELECT lo_from_bytea(424201, 'hello, large object');
SELECT lo_from_bytea(424202, '');
SELECT lo_from_bytea(424203, decode(repeat('00ff7f80', 5000), 'hex'));
COMMENT ON LARGE OBJECT 424201 IS 'greeting';
GRANT SELECT ON LARGE OBJECT 424201 TO :"reader";
CREATE TABLE public.attachments (id integer PRIMARY KEY, quote_id integer REFERENCES
    public.quotes (id), content oid NOT NULL);
INSERT INTO public.attachments VALUES (1, 1, 424201), (2, 2, 424203);

-- `SELECT ... t::text FROM x AS t` reads this column, not the row.
CREATE TABLE public.notes (id integer PRIMARY KEY, t text, body text);
INSERT INTO public.notes VALUES (1, 'same', 'first'), (2, 'same', 'second'), (3, NULL, 'third');
