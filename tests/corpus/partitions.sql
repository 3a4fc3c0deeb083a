-- Partitioned tables (range, list, sub-partitions, default partitions, a partition in another
-- schema than its parent, a foreign key to a partitioned table) and INHERITS hierarchies with
-- rows in the parent and in every child. Counts are per physical table (ONLY).

CREATE SCHEMA part;

CREATE TABLE part.events (
    id bigserial,
    happened date NOT NULL,
    kind text NOT NULL,
    payload text,
    PRIMARY KEY (id, happened, kind)
) PARTITION BY RANGE (happened);
CREATE TABLE part.events_2024 PARTITION OF part.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE part.events_2025 PARTITION OF part.events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY LIST (kind);
CREATE TABLE part.events_2025_click PARTITION OF part.events_2025 FOR VALUES IN ('click', 'tap');
CREATE TABLE part.events_2025_other PARTITION OF part.events_2025 DEFAULT;
CREATE TABLE part.events_default PARTITION OF part.events DEFAULT;
CREATE INDEX events_kind ON part.events (kind);
INSERT INTO part.events (happened, kind, payload)
SELECT date '2023-07-01' + g * 7, (ARRAY['click', 'view', 'tap', 'buy'])[g % 4 + 1], 'p' || g
FROM generate_series(1, 150) g;

CREATE TABLE part.event_notes (
    id integer PRIMARY KEY,
    event_id bigint NOT NULL,
    happened date NOT NULL,
    kind text NOT NULL,
    note text,
    FOREIGN KEY (event_id, happened, kind) REFERENCES part.events ON DELETE CASCADE
);
INSERT INTO part.event_notes
SELECT row_number() OVER (), id, happened, kind, 'note on ' || id
FROM part.events WHERE id % 5 = 0;

CREATE TABLE public.measurements (
    region text NOT NULL,
    at timestamptz NOT NULL,
    value double precision
) PARTITION BY LIST (region);
CREATE TABLE public.measurements_eu PARTITION OF public.measurements FOR VALUES IN ('eu');
CREATE TABLE public.measurements_us PARTITION OF public.measurements FOR VALUES IN ('us');
CREATE TABLE part.measurements_apac PARTITION OF public.measurements FOR VALUES IN ('apac');
CREATE TABLE public.measurements_rest PARTITION OF public.measurements DEFAULT;
INSERT INTO public.measurements
SELECT (ARRAY['eu', 'us', 'apac', 'latam', 'eu'])[g % 5 + 1],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '37 minutes', g / 7.0
FROM generate_series(1, 90) g;

-- INHERITS: rows in the parent, the children and a grandchild in another schema.
CREATE TABLE public.vehicles (
    id integer PRIMARY KEY,
    name text NOT NULL,
    wheels integer CHECK (wheels >= 0)
);
CREATE TABLE public.cars (seats integer) INHERITS (public.vehicles);
CREATE TABLE public.trucks (payload_kg integer) INHERITS (public.vehicles);
CREATE TABLE part.electric_cars (battery_kwh numeric(6, 1)) INHERITS (public.cars);
CREATE TABLE public.tagged (tag text);
CREATE TABLE public.tagged_trucks () INHERITS (public.trucks, public.tagged);
INSERT INTO public.vehicles SELECT g, 'vehicle ' || g, 2 FROM generate_series(1, 3) g;
INSERT INTO public.cars SELECT g, 'car ' || g, 4, 5 FROM generate_series(101, 104) g;
INSERT INTO public.trucks SELECT g, 'truck ' || g, 6, 1000 * g FROM generate_series(201, 205) g;
INSERT INTO part.electric_cars SELECT g, 'ev ' || g, 4, 5, 75.5 FROM generate_series(301, 306) g;
INSERT INTO public.tagged VALUES ('only in tagged');
INSERT INTO public.tagged_trucks SELECT g, 'tagged truck ' || g, 18, 9000, 'hazmat'
FROM generate_series(401, 402) g;
