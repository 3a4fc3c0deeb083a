-- Values whose text form is fragile: float edges (NaN, -0, infinities, shortest round-trip),
-- numeric with trailing zeros, timestamps BC and infinite, odd intervals, text with control
-- characters (no NUL: PostgreSQL text cannot hold one), bytea, json (kept as written) versus
-- jsonb (normalized), tsvector, money.

CREATE SCHEMA edge;

CREATE TABLE edge.floats (id integer PRIMARY KEY, f8 double precision, f4 real);
INSERT INTO edge.floats VALUES
    (1, 'NaN', 'NaN'), (2, '-0', '-0'), (3, 'Infinity', 'Infinity'),
    (4, '-Infinity', '-Infinity'), (5, 0.1, 0.1), (6, 1.0000000000000002, 1.0000001),
    (7, 1e-300, 1e-38), (8, 5e-324, 1.4e-45), (9, 1.7976931348623157e308, 3.4028235e38),
    (10, 0, 0), (11, NULL, NULL), (12, 2.0 / 3.0, 2.0 / 3.0);

CREATE TABLE edge.numbers (id integer PRIMARY KEY, n numeric, fixed numeric(12, 4), m money);
INSERT INTO edge.numbers VALUES
    (1, 1.500, 1.5, 1.5), (2, 0.000, 0, 0), (3, -0.0, -0.0, -0.01), (4, 'NaN', 'NaN', NULL),
    (5, 1e-20, 0.00005, 1234567.89), (6, 12345678901234567890.1234567890, 12345678.9,
    -92233720368547758.08), (7, 'Infinity', NULL, 92233720368547758.07), (8, '-Infinity', 1, 0);

CREATE TABLE edge.times (
    id integer PRIMARY KEY,
    ts timestamp,
    tstz timestamptz,
    d date,
    t time,
    ttz timetz,
    iv interval
);
INSERT INTO edge.times VALUES
    (1, '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '4713-01-01 BC',
     '00:00', '00:00+14', '-178000000 years'),
    (2, 'infinity', 'infinity', 'infinity', '24:00', '24:00-15:59', '178000000 years'),
    (3, '-infinity', '-infinity', '-infinity', '23:59:59.999999', '12:00+05:45',
     '1 year 2 mons -3 days 04:05:06.789'),
    (4, '2000-02-29 23:59:59.999999', '2024-03-10 02:30:00 America/New_York',
     '0044-03-15 BC', '12:34:56.5', '01:02:03.4-03:30', '-1 mons +1 day -00:00:01'),
    (5, '1999-12-31 24:00:00', '2016-12-31 23:59:59.5+00', '2024-02-29', NULL, NULL,
     'P1Y2M3DT4H5M6S'),
    (6, NULL, '1970-01-01 00:00:00+00', '1970-01-01', '00:00:00.000001', '00:00:00+00',
     '0'),
    (7, '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '0001-01-01', NULL, NULL,
     '-0.000001 seconds');

CREATE TABLE edge.texts (id integer PRIMARY KEY, t text, b bytea, c char(5), v varchar(8));
INSERT INTO edge.texts VALUES
    (1, E'tab\there', '\x00ff10', 'a', 'a'),
    (2, E'new\nline and cr\r', '', 'ab   ', 'ab  '),
    (3, E'bell\x07 escape\x1b[31m', '\x5c', NULL, NULL),
    (4, E'backslash \\ and \\N and \\.', E'\\x5c4e', ' ', ''),
    (5, 'ünïcödé, emoji 🎉, combining é, RTL שלום', E'\\x0d0a09', 'ü', 'ü'),
    (6, '', NULL, '', ''),
    (7, NULL, '\x', 'x', 'x'),
    (8, E'\x01\x02\x03\x7f', decode(repeat('00ff', 64), 'hex'), 'z', 'z'),
    (9, 'comma, "quote", ''apostrophe''', '\x2c22', ',', ',');

CREATE TABLE edge.documents (id integer PRIMARY KEY, j json, jb jsonb, ts tsvector, q tsquery);
INSERT INTO edge.documents VALUES
    (1, '{"b": 1, "a": 2, "a": 3}', '{"b": 1, "a": 2, "a": 3}',
     'a fat cat sat on a mat'::tsvector, 'fat & (cat | rat)'::tsquery),
    (2, '[1.0, 1e2, -0, "\u00e9"]', '[1.0, 1e2, -0, "\u00e9"]',
     to_tsvector('english', 'The quick brown foxes jumped'), to_tsquery('english', 'jumping')),
    (3, '  {"nested": {"z": [], "y": {}}}  ', '{"nested": {"z": [], "y": {}}}',
     $$'it''s':1A 'quoted':2B,3C$$::tsvector, $$'a':* & !b$$::tsquery),
    (4, 'null', 'null', '', ''),
    (5, '"a string"', '"a string"', NULL, NULL),
    (6, '{"n": 123456789012345678901234567890.000}', '{"n": 123456789012345678901234567890.000}',
     NULL, NULL);

CREATE TABLE edge.misc (
    id integer PRIMARY KEY,
    u uuid,
    addr inet,
    net cidr,
    mac macaddr,
    bits bit varying(16),
    p point,
    flag boolean,
    xs integer[][]
);
INSERT INTO edge.misc VALUES
    (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8',
     '08:00:2b:01:02:03', B'10101', '(1.5,-0)', true, '{{1,2},{3,4}}'),
    (2, NULL, '::ffff:1.2.3.4', '2001:db8::/32', NULL, B'', '(NaN,Infinity)', false,
     '[0:1][5:5]={{7},{8}}'),
    (3, '00000000-0000-0000-0000-000000000000', NULL, NULL, NULL, NULL, NULL, NULL, '{}');
