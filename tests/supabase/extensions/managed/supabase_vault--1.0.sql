-- Stand-in: secrets as Vault keeps them, a configuration table whose rows pg_dump writes.
-- The real Vault encrypts `secret` with a key derived from the project's root key; here it is
-- only base64, and `decrypted_secrets` reverses that.
CREATE TABLE vault.secrets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text UNIQUE,
  description text NOT NULL DEFAULT '',
  secret text NOT NULL,
  key_id uuid REFERENCES pgsodium.key(id),
  nonce bytea DEFAULT pgsodium.crypto_aead_det_noncegen(),
  created_at timestamptz NOT NULL DEFAULT '2025-01-01 00:00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2025-01-01 00:00:00+00');
SELECT pg_catalog.pg_extension_config_dump('vault.secrets', '');

CREATE VIEW vault.decrypted_secrets AS
  SELECT id, name, description, convert_from(decode(secret, 'base64'), 'UTF8') AS decrypted_secret,
         key_id, created_at, updated_at
  FROM vault.secrets;

CREATE FUNCTION vault.create_secret(new_secret text, new_name text DEFAULT NULL,
                                    new_description text DEFAULT '')
RETURNS uuid LANGUAGE sql
AS $$ INSERT INTO vault.secrets (name, description, secret)
      VALUES (new_name, new_description, encode(convert_to(new_secret, 'UTF8'), 'base64'))
      RETURNING id $$;
