-- Names that break naive handling: the same table name in two schemas, and schema, table,
-- column, index, constraint and sequence names holding dots, double quotes, commas, spaces,
-- capitals and non-ASCII letters. Every table has its own row count, so a restore that
-- touches the wrong table shows in the counts alone.

CREATE SCHEMA other;
CREATE SCHEMA we;
CREATE SCHEMA "we.ird";
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA "ünï";

-- The runbook's table, and its namesake outside public.
CREATE TABLE public.quotes (
    id integer PRIMARY KEY,
    title text NOT NULL,
    amount numeric(10, 2)
);
CREATE TABLE other.quotes (
    id integer PRIMARY KEY,
    public_quote integer REFERENCES public.quotes (id),
    note text
);
INSERT INTO public.quotes SELECT g, 'public quote ' || g, g * 1.5 FROM generate_series(1, 30) g;
INSERT INTO other.quotes SELECT g, g % 30 + 1, 'other ' || g FROM generate_series(1, 42) g;

-- A dot inside a name: other."we.ird" must never be read as we.ird, nor "we.ird".quotes
-- as quotes; public."other.quotes" must never be read as other.quotes.
CREATE TABLE we.ird (id integer PRIMARY KEY, v text);
CREATE TABLE other."we.ird" (id integer PRIMARY KEY, v text);
CREATE TABLE "we.ird".quotes (id integer PRIMARY KEY, v text);
CREATE TABLE public."other.quotes" (id integer PRIMARY KEY, v text);
INSERT INTO we.ird SELECT g, 'we.ird ' || g FROM generate_series(1, 3) g;
INSERT INTO other."we.ird" SELECT g, 'other."we.ird" ' || g FROM generate_series(1, 5) g;
INSERT INTO "we.ird".quotes SELECT g, '"we.ird".quotes ' || g FROM generate_series(1, 7) g;
INSERT INTO public."other.quotes" SELECT g, 'public."other.quotes" ' || g
FROM generate_series(1, 11) g;

-- Capitals, quotes, commas, spaces, non-ASCII.
CREATE TABLE public."Quotes" (id integer PRIMARY KEY, v text);
CREATE TABLE public."quo""tes" (id integer PRIMARY KEY, v text);
CREATE TABLE public."a,b" (id integer PRIMARY KEY, v text);
CREATE TABLE public."a b" (id integer PRIMARY KEY, v text);
INSERT INTO public."Quotes" SELECT g, 'Quotes ' || g FROM generate_series(1, 13) g;
INSERT INTO public."quo""tes" SELECT g, 'quo"tes ' || g FROM generate_series(1, 17) g;
INSERT INTO public."a,b" SELECT g, 'a,b ' || g FROM generate_series(1, 19) g;
INSERT INTO public."a b" SELECT g, 'a b ' || g FROM generate_series(1, 23) g;

CREATE SEQUENCE "Odd Schema"."Seq.Name" AS integer START 500;
CREATE TABLE "Odd Schema"."Mixed Case Table" (
    "ID" integer PRIMARY KEY DEFAULT nextval('"Odd Schema"."Seq.Name"'),
    "Col.1" text,
    "with ""quote""" text,
    "a,b" integer,
    "select" boolean,
    "ünï" text
);
ALTER SEQUENCE "Odd Schema"."Seq.Name" OWNED BY "Odd Schema"."Mixed Case Table"."ID";
INSERT INTO "Odd Schema"."Mixed Case Table" ("Col.1", "with ""quote""", "a,b", "select", "ünï")
SELECT 'c' || g, 'q"' || g, g, g % 2 = 0, 'ü' || g FROM generate_series(1, 29) g;
CREATE INDEX "Index.With ""Quotes""" ON "Odd Schema"."Mixed Case Table" ("Col.1", "a,b");

CREATE TABLE "ünï"."tàble ü" (
    id integer PRIMARY KEY,
    mixed integer,
    "naïve" text,
    CONSTRAINT "Chèck, ""it""" CHECK ("naïve" <> ''),
    CONSTRAINT "fk.to mixed" FOREIGN KEY (mixed) REFERENCES "Odd Schema"."Mixed Case Table" ("ID")
);
INSERT INTO "ünï"."tàble ü" SELECT g, 500 + g % 29, 'ñ' || g FROM generate_series(1, 31) g;

CREATE VIEW "we.ird"."View.Of ""All""" AS
SELECT 'public.quotes' AS source, count(*) AS n FROM public.quotes
UNION ALL SELECT 'other.quotes', count(*) FROM other.quotes;
