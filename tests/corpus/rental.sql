-- A film-rental schema in the shape of the classic sample databases, written for this corpus:
-- domains (`year`, a bigint domain with a non-ASCII name), an enum rating, a full-text column
-- kept by a trigger, last_update triggers, a foreign-key cycle (store <-> staff), payments
-- partitioned by month with a default partition, views, a materialized view and a few
-- functions. Deterministic data, a few thousand rows.

CREATE DOMAIN public.year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE DOMAIN public."bıgınt" AS bigint;
CREATE TYPE public.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');

CREATE FUNCTION public.last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_update := current_timestamp;
    RETURN NEW;
END
$$;

CREATE TABLE public.language (
    language_id serial PRIMARY KEY,
    name character(20) NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.category (
    category_id serial PRIMARY KEY,
    name text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.actor (
    actor_id serial PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE INDEX idx_actor_last_name ON public.actor (last_name);
CREATE TABLE public.film (
    film_id serial PRIMARY KEY,
    title text NOT NULL,
    description text,
    release_year public.year,
    language_id integer NOT NULL REFERENCES public.language ON UPDATE CASCADE ON DELETE RESTRICT,
    original_language_id integer REFERENCES public.language,
    rental_duration smallint NOT NULL DEFAULT 3,
    rental_rate numeric(4, 2) NOT NULL DEFAULT 4.99,
    length smallint,
    replacement_cost numeric(5, 2) NOT NULL DEFAULT 19.99,
    rating public.mpaa_rating DEFAULT 'G',
    special_features text[],
    fulltext tsvector NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE INDEX film_fulltext_idx ON public.film USING gist (fulltext);
CREATE INDEX idx_title ON public.film (title);
CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON public.film
    FOR EACH ROW EXECUTE FUNCTION tsvector_update_trigger(fulltext, 'pg_catalog.english',
                                                           title, description);
CREATE TABLE public.film_actor (
    actor_id integer NOT NULL REFERENCES public.actor ON UPDATE CASCADE ON DELETE RESTRICT,
    film_id integer NOT NULL REFERENCES public.film ON UPDATE CASCADE ON DELETE RESTRICT,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    PRIMARY KEY (actor_id, film_id)
);
CREATE TABLE public.film_category (
    film_id integer NOT NULL REFERENCES public.film ON UPDATE CASCADE ON DELETE RESTRICT,
    category_id integer NOT NULL REFERENCES public.category,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    PRIMARY KEY (film_id, category_id)
);
CREATE TABLE public.country (
    country_id serial PRIMARY KEY,
    country text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.city (
    city_id serial PRIMARY KEY,
    city text NOT NULL,
    country_id integer NOT NULL REFERENCES public.country,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.address (
    address_id serial PRIMARY KEY,
    address text NOT NULL,
    district text NOT NULL,
    city_id integer NOT NULL REFERENCES public.city,
    postal_code text,
    phone text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.store (
    store_id serial PRIMARY KEY,
    manager_staff_id integer NOT NULL,
    address_id integer NOT NULL REFERENCES public.address,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.staff (
    staff_id serial PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    address_id integer NOT NULL REFERENCES public.address,
    email text,
    store_id integer NOT NULL REFERENCES public.store,
    active boolean NOT NULL DEFAULT true,
    username text NOT NULL,
    password text,
    picture bytea,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.customer (
    customer_id serial PRIMARY KEY,
    store_id integer NOT NULL REFERENCES public.store,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text,
    address_id integer NOT NULL REFERENCES public.address,
    activebool boolean NOT NULL DEFAULT true,
    create_date date NOT NULL DEFAULT '2024-01-01',
    last_update timestamptz DEFAULT '2024-01-01 00:00:00+00',
    active integer
);
CREATE TABLE public.inventory (
    inventory_id serial PRIMARY KEY,
    film_id integer NOT NULL REFERENCES public.film,
    store_id integer NOT NULL REFERENCES public.store,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE public.rental (
    rental_id serial PRIMARY KEY,
    rental_date timestamptz NOT NULL,
    inventory_id integer NOT NULL REFERENCES public.inventory,
    customer_id integer NOT NULL REFERENCES public.customer,
    return_date timestamptz,
    staff_id integer NOT NULL REFERENCES public.staff,
    last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE UNIQUE INDEX idx_unq_rental ON public.rental (rental_date, inventory_id, customer_id);
CREATE TABLE public.payment (
    payment_id serial NOT NULL,
    customer_id integer NOT NULL REFERENCES public.customer,
    staff_id integer NOT NULL REFERENCES public.staff,
    rental_id integer NOT NULL REFERENCES public.rental,
    amount numeric(5, 2) NOT NULL,
    payment_date timestamptz NOT NULL,
    PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE public.payment_p2024_01 PARTITION OF public.payment
    FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00');
CREATE TABLE public.payment_p2024_02 PARTITION OF public.payment
    FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00');
CREATE TABLE public.payment_p2024_03 PARTITION OF public.payment
    FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-04-01 00:00:00+00');
CREATE TABLE public.payment_p2024_04 PARTITION OF public.payment
    FOR VALUES FROM ('2024-04-01 00:00:00+00') TO ('2024-05-01 00:00:00+00');
CREATE TABLE public.payment_default PARTITION OF public.payment DEFAULT;
CREATE INDEX idx_payment_customer ON public.payment (customer_id);

ALTER TABLE public.store ADD CONSTRAINT store_manager_staff_id_fkey
    FOREIGN KEY (manager_staff_id) REFERENCES public.staff DEFERRABLE INITIALLY DEFERRED;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['actor', 'address', 'category', 'city', 'country', 'customer',
                             'film', 'film_actor', 'film_category', 'inventory', 'language',
                             'rental', 'staff', 'store'] LOOP
        EXECUTE format('CREATE TRIGGER last_updated BEFORE UPDATE ON public.%I '
                       'FOR EACH ROW EXECUTE FUNCTION public.last_updated()', t);
    END LOOP;
END
$$;

INSERT INTO public.language (name)
VALUES ('English'), ('Italian'), ('Japanese'), ('Mandarin'), ('French'), ('German');
INSERT INTO public.category (name)
SELECT unnest(ARRAY['Action', 'Animation', 'Children', 'Classics', 'Comedy', 'Documentary',
                    'Drama', 'Family', 'Foreign', 'Games', 'Horror', 'Music', 'New',
                    'Sci-Fi', 'Sports', 'Travel']);
INSERT INTO public.actor (first_name, last_name)
SELECT (ARRAY['PENELOPE', 'NICK', 'ED', 'JENNIFER', 'JOHNNY', 'BETTE', 'GRACE'])[g % 7 + 1],
       (ARRAY['GUINESS', 'WAHLBERG', 'CHASE', 'DAVIS', 'LOLLOBRIGIDA', 'NICHOLSON'])[g % 6 + 1]
           || ' ' || g
FROM generate_series(1, 120) g;
INSERT INTO public.film (title, description, release_year, language_id, original_language_id,
                         rental_duration, rental_rate, length, replacement_cost, rating,
                         special_features)
SELECT 'FILM ' || g || ' ' || (ARRAY['ACADEMY', 'DINOSAUR', 'ACE', 'GOLDFINGER'])[g % 4 + 1],
       'A ' || (ARRAY['Epic', 'Astounding', 'Fanciful', 'Boring'])[g % 4 + 1] || ' story of a '
           || (ARRAY['dog', 'robot', 'feminist', 'cat'])[g % 4 + 1] || ' who must chase a '
           || (ARRAY['moose', 'boat', 'pastry chef'])[g % 3 + 1],
       1990 + g % 35, g % 6 + 1, CASE WHEN g % 10 = 0 THEN 2 END, 3 + g % 5,
       (ARRAY[0.99, 2.99, 4.99])[g % 3 + 1], 46 + g % 140, 9.99 + g % 20,
       (ARRAY['G', 'PG', 'PG-13', 'R', 'NC-17']::public.mpaa_rating[])[g % 5 + 1],
       (ARRAY['{Trailers}', '{Commentaries,"Deleted Scenes"}', '{}',
              '{"Behind the Scenes"}'])[g % 4 + 1]::text[]
FROM generate_series(1, 400) g;
INSERT INTO public.film_actor (actor_id, film_id)
SELECT DISTINCT abs(hashint4(g)) % 120 + 1, g % 400 + 1 FROM generate_series(1, 1600) g;
INSERT INTO public.film_category (film_id, category_id)
SELECT g, abs(hashint4(g * 7)) % 16 + 1 FROM generate_series(1, 400) g;
INSERT INTO public.country (country)
SELECT 'Country ' || g FROM generate_series(1, 20) g;
INSERT INTO public.city (city, country_id)
SELECT 'City ' || g, g % 20 + 1 FROM generate_series(1, 60) g;
INSERT INTO public.address (address, district, city_id, postal_code, phone)
SELECT g || ' Main Street', 'District ' || g % 9, g % 60 + 1,
       CASE WHEN g % 11 <> 0 THEN lpad((g * 37)::text, 5, '0') END, '555-' || g
FROM generate_series(1, 320) g;
BEGIN;
INSERT INTO public.store (manager_staff_id, address_id) VALUES (1, 1), (2, 2);
INSERT INTO public.staff (first_name, last_name, address_id, email, store_id, username,
                          password, picture)
VALUES ('Mike', 'Hillyer', 3, 'mike@example.com', 1, 'Mike', '8cb2237d0679ca88db6464eac60da96345513964',
        '\x89504e470d0a1a0a'),
       ('Jon', 'Stephens', 4, NULL, 2, 'Jon', NULL, NULL);
COMMIT;
INSERT INTO public.customer (store_id, first_name, last_name, email, address_id, activebool,
                             create_date, active)
SELECT g % 2 + 1, 'FIRST' || g, 'LAST' || g, 'customer' || g || '@example.org', g % 300 + 5,
       g % 50 <> 0, date '2024-01-01' + g % 40, CASE WHEN g % 50 <> 0 THEN 1 ELSE 0 END
FROM generate_series(1, 250) g;
INSERT INTO public.inventory (film_id, store_id)
SELECT g % 400 + 1, g % 2 + 1 FROM generate_series(1, 1200) g;
INSERT INTO public.rental (rental_date, inventory_id, customer_id, return_date, staff_id)
SELECT timestamptz '2024-01-01 00:00:00+00' + g * interval '47 minutes 13 seconds',
       abs(hashint4(g)) % 1200 + 1, abs(hashint4(g + 1)) % 250 + 1,
       CASE WHEN g % 97 <> 0
            THEN timestamptz '2024-01-01 00:00:00+00' + g * interval '47 minutes 13 seconds'
                 + (g % 9) * interval '1 day' END,
       g % 2 + 1
FROM generate_series(1, 4000) g;
INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
SELECT customer_id, staff_id, rental_id, (ARRAY[0.99, 2.99, 4.99, 5.98, 11.99])[rental_id % 5 + 1],
       rental_date + interval '2 hours'
FROM public.rental WHERE rental_id % 13 <> 0;
UPDATE public.film SET rental_rate = 1.99 WHERE film_id % 50 = 0;

CREATE VIEW public.film_list AS
SELECT f.film_id AS fid, f.title, f.description, c.name AS category, f.rental_rate AS price,
       f.length, f.rating,
       string_agg(a.first_name || ' ' || a.last_name, ', ' ORDER BY a.actor_id) AS actors
FROM public.film f
LEFT JOIN public.film_category fc ON fc.film_id = f.film_id
LEFT JOIN public.category c ON c.category_id = fc.category_id
LEFT JOIN public.film_actor fa ON fa.film_id = f.film_id
LEFT JOIN public.actor a ON a.actor_id = fa.actor_id
GROUP BY f.film_id, f.title, f.description, c.name, f.rental_rate, f.length, f.rating;
CREATE VIEW public.sales_by_store AS
SELECT s.store_id, ci.city || ', ' || co.country AS store, sum(p.amount) AS total_sales
FROM public.payment p
JOIN public.rental r ON p.rental_id = r.rental_id
JOIN public.inventory i ON r.inventory_id = i.inventory_id
JOIN public.store s ON i.store_id = s.store_id
JOIN public.address a ON s.address_id = a.address_id
JOIN public.city ci ON a.city_id = ci.city_id
JOIN public.country co ON ci.country_id = co.country_id
GROUP BY s.store_id, ci.city, co.country;
CREATE MATERIALIZED VIEW public.rental_by_category AS
SELECT c.name AS category, sum(p.amount) AS total_sales
FROM public.payment p
JOIN public.rental r ON p.rental_id = r.rental_id
JOIN public.inventory i ON r.inventory_id = i.inventory_id
JOIN public.film_category fc ON i.film_id = fc.film_id
JOIN public.category c ON fc.category_id = c.category_id
GROUP BY c.name;
CREATE UNIQUE INDEX rental_category ON public.rental_by_category (category);

CREATE FUNCTION public.inventory_in_stock(p_inventory_id integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM public.rental
                       WHERE inventory_id = p_inventory_id AND return_date IS NULL)
$$;
CREATE FUNCTION public.film_in_stock(p_film_id integer, p_store_id integer)
RETURNS SETOF integer LANGUAGE sql STABLE AS $$
    SELECT inventory_id FROM public.inventory
    WHERE film_id = p_film_id AND store_id = p_store_id
      AND public.inventory_in_stock(inventory_id)
$$;
CREATE AGGREGATE public.group_concat(text) (SFUNC = textcat, STYPE = text);
