-- Stand-in: the digests core PostgreSQL computes, under pgcrypto's names.
CREATE FUNCTION digest(data text, type text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT CASE lower(type) WHEN 'md5' THEN decode(md5(data), 'hex')
                              WHEN 'sha224' THEN sha224(convert_to(data, 'UTF8'))
                              WHEN 'sha256' THEN sha256(convert_to(data, 'UTF8'))
                              WHEN 'sha384' THEN sha384(convert_to(data, 'UTF8'))
                              WHEN 'sha512' THEN sha512(convert_to(data, 'UTF8')) END $$;

CREATE FUNCTION gen_random_bytes(integer) RETURNS bytea LANGUAGE sql VOLATILE STRICT
AS $$ SELECT substr(string_agg(decode(replace(gen_random_uuid()::text, '-', ''), 'hex'), ''),
                    1, $1)
      FROM generate_series(1, ($1 + 15) / 16) $$;
