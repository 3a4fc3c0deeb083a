-- Stand-in: version 4 from core PostgreSQL, and the nil UUID.
CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE
AS $$ SELECT gen_random_uuid() $$;
CREATE FUNCTION uuid_nil() RETURNS uuid LANGUAGE sql IMMUTABLE
AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
