-- Stand-in: the key table (a configuration table, so pg_dump writes its rows) and a nonce
-- generator. Key rows name derived keys; the root key they derive from is not in the database.
CREATE TABLE pgsodium.key (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text UNIQUE,
  status text NOT NULL DEFAULT 'valid',
  key_type text NOT NULL DEFAULT 'aead-det',
  key_id bigint,
  key_context bytea NOT NULL DEFAULT '\x7067736f6469756d',
  created timestamptz NOT NULL DEFAULT '2025-01-01 00:00:00+00');
SELECT pg_catalog.pg_extension_config_dump('pgsodium.key', '');

CREATE FUNCTION pgsodium.crypto_aead_det_noncegen() RETURNS bytea LANGUAGE sql VOLATILE
AS $$ SELECT decode(replace(gen_random_uuid()::text, '-', ''), 'hex') $$;
