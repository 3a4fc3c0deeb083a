-- What Supabase's services keep in a project's database, run by `supabase_admin` after the
-- extensions exist: GoTrue's `auth`, Storage's `storage`, Realtime, GraphQL's public entry
-- point, Database Webhooks, pg_cron's schema, the pooler's lookup, PostgREST's event triggers
-- and the Realtime publication. Table shapes follow what those services create today (trimmed
-- to the columns that matter for a restore); the SQL is Backstop's own.

-- auth ---------------------------------------------------------------------------------------
CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
CREATE TYPE auth.code_challenge_method AS ENUM ('s256', 'plain');

CREATE TABLE auth.instances (
  id uuid PRIMARY KEY, uuid uuid, raw_base_config text,
  created_at timestamptz, updated_at timestamptz);

CREATE TABLE auth.users (
  instance_id uuid,
  id uuid PRIMARY KEY,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255) DEFAULT '',
  confirmation_sent_at timestamptz,
  recovery_token varchar(255) DEFAULT '',
  recovery_sent_at timestamptz,
  email_change varchar(255) DEFAULT '',
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text UNIQUE DEFAULT NULL,
  phone_confirmed_at timestamptz,
  confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at))
    STORED,
  banned_until timestamptz,
  is_sso_user boolean NOT NULL DEFAULT false,
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false);
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE NOT is_sso_user;
CREATE INDEX users_instance_id_idx ON auth.users (instance_id);
COMMENT ON TABLE auth.users IS 'Auth: each user''s login data, in a schema the API does not expose.';

CREATE TABLE auth.identities (
  provider_id text NOT NULL,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  identity_data jsonb NOT NULL,
  provider text NOT NULL,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  UNIQUE (provider_id, provider));
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);

CREATE TABLE auth.sessions (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  created_at timestamptz, updated_at timestamptz,
  aal auth.aal_level, not_after timestamptz, user_agent text, ip inet);

CREATE TABLE auth.refresh_tokens (
  instance_id uuid,
  id bigserial PRIMARY KEY,
  token varchar(255) UNIQUE,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz, updated_at timestamptz,
  parent varchar(255),
  session_id uuid REFERENCES auth.sessions (id) ON DELETE CASCADE);

CREATE TABLE auth.mfa_factors (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  friendly_name text,
  factor_type auth.factor_type NOT NULL,
  status auth.factor_status NOT NULL,
  created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  secret text);

CREATE TABLE auth.flow_state (
  id uuid PRIMARY KEY, user_id uuid, auth_code text NOT NULL,
  code_challenge_method auth.code_challenge_method NOT NULL, code_challenge text NOT NULL,
  provider_type text NOT NULL, created_at timestamptz, updated_at timestamptz);

CREATE TABLE auth.audit_log_entries (
  instance_id uuid, id uuid PRIMARY KEY, payload json, created_at timestamptz,
  ip_address varchar(64) NOT NULL DEFAULT '');

CREATE TABLE auth.schema_migrations (version varchar(255) PRIMARY KEY);

-- The helpers RLS policies call: claims of the request's JWT, as PostgREST sets them.
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                      nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                      auth.jwt() ->> 'sub')::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                      auth.jwt() ->> 'role') $$;
CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                      auth.jwt() ->> 'email') $$;

-- GoTrue owns its tables and keeps RLS on, with no policy: only it (and BYPASSRLS) reads them.
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'auth'::regnamespace
                                            AND c.relkind = 'r' LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO supabase_auth_admin', t);
  END LOOP;
  FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'auth'::regnamespace
                                            AND c.relkind = 'r' LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
  END LOOP;
END $$;
ALTER FUNCTION auth.jwt() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.role() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.email() OWNER TO supabase_auth_admin;
ALTER TYPE auth.aal_level OWNER TO supabase_auth_admin;
ALTER TYPE auth.factor_type OWNER TO supabase_auth_admin;
ALTER TYPE auth.factor_status OWNER TO supabase_auth_admin;
ALTER TYPE auth.code_challenge_method OWNER TO supabase_auth_admin;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, postgres;
GRANT ALL ON SCHEMA auth TO supabase_auth_admin, dashboard_user;
GRANT ALL ON ALL TABLES IN SCHEMA auth TO postgres, dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON SEQUENCES TO postgres, dashboard_user;

-- storage ------------------------------------------------------------------------------------
CREATE TABLE storage.buckets (
  id text PRIMARY KEY,
  name text NOT NULL,
  owner uuid,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  public boolean DEFAULT false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text);
CREATE UNIQUE INDEX bname ON storage.buckets (name);

-- Rows describe files; the files themselves live in Supabase's object store, not here.
CREATE TABLE storage.objects (
  id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),
  bucket_id text REFERENCES storage.buckets (id),
  name text,
  owner uuid,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  last_accessed_at timestamptz DEFAULT now(),
  metadata jsonb,
  path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  version text,
  owner_id text);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);

CREATE TABLE storage.migrations (
  id integer PRIMARY KEY,
  name varchar(100) NOT NULL UNIQUE,
  hash varchar(40) NOT NULL,
  executed_at timestamp DEFAULT current_timestamp);

CREATE FUNCTION storage.foldername(name text) RETURNS text[] LANGUAGE sql IMMUTABLE
AS $$ SELECT (string_to_array(name, '/'))[1:cardinality(string_to_array(name, '/')) - 1] $$;
CREATE FUNCTION storage.filename(name text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT (string_to_array(name, '/'))[cardinality(string_to_array(name, '/'))] $$;
CREATE FUNCTION storage.extension(name text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN storage.filename(name) LIKE '%.%'
                  THEN regexp_replace(storage.filename(name), '^.*\.', '') ELSE '' END $$;
CREATE FUNCTION storage.update_updated_at_column() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects
  FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();

ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets OWNER TO supabase_storage_admin;
ALTER TABLE storage.objects OWNER TO supabase_storage_admin;
ALTER TABLE storage.migrations OWNER TO supabase_storage_admin;
ALTER FUNCTION storage.foldername(text) OWNER TO supabase_storage_admin;
ALTER FUNCTION storage.filename(text) OWNER TO supabase_storage_admin;
ALTER FUNCTION storage.extension(text) OWNER TO supabase_storage_admin;
ALTER FUNCTION storage.update_updated_at_column() OWNER TO supabase_storage_admin;

GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA storage TO supabase_storage_admin, dashboard_user;
GRANT ALL ON ALL TABLES IN SCHEMA storage TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;

-- realtime -----------------------------------------------------------------------------------
CREATE TABLE realtime.schema_migrations (version bigint PRIMARY KEY, inserted_at timestamp(0));
CREATE TABLE realtime.subscription (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id uuid NOT NULL,
  entity regclass NOT NULL,
  filters jsonb NOT NULL DEFAULT '[]',
  claims jsonb NOT NULL,
  created_at timestamp NOT NULL DEFAULT timezone('utc', now()));
CREATE TABLE realtime.messages (
  id bigserial,
  topic text NOT NULL,
  extension text NOT NULL,
  payload jsonb,
  event text,
  private boolean DEFAULT false,
  inserted_at timestamp NOT NULL DEFAULT now(),
  PRIMARY KEY (id, inserted_at));
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA realtime TO postgres, anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA realtime TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
  GRANT ALL ON TABLES TO postgres, dashboard_user;

-- graphql_public: the API's entry point, handing over to pg_graphql ---------------------------
CREATE FUNCTION graphql_public.graphql("operationName" text DEFAULT NULL,
                                       query text DEFAULT NULL, variables jsonb DEFAULT NULL,
                                       extensions jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE sql
AS $$ SELECT graphql.resolve(query, coalesce(variables, '{}'), "operationName", extensions) $$;
GRANT USAGE ON SCHEMA graphql_public, graphql TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA graphql_public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

-- Database Webhooks: triggers on user tables call supabase_functions.http_request ------------
CREATE TABLE supabase_functions.migrations (
  version text PRIMARY KEY, inserted_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE supabase_functions.hooks (
  id bigserial PRIMARY KEY, hook_table_id integer NOT NULL, hook_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), request_id bigint);
CREATE FUNCTION supabase_functions.http_request() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = supabase_functions
AS $$
DECLARE
  request_id bigint;
BEGIN
  -- TG_ARGV: url, method, headers, params, timeout (as the dashboard writes them)
  IF TG_ARGV[1] = 'GET' THEN
    request_id := net.http_get(TG_ARGV[0], TG_ARGV[3]::jsonb, TG_ARGV[2]::jsonb,
                               TG_ARGV[4]::integer);
  ELSE
    request_id := net.http_post(TG_ARGV[0], jsonb_build_object(
                                  'type', TG_OP, 'table', TG_TABLE_NAME,
                                  'schema', TG_TABLE_SCHEMA, 'record', to_jsonb(NEW)),
                                TG_ARGV[3]::jsonb, TG_ARGV[2]::jsonb, TG_ARGV[4]::integer);
  END IF;
  INSERT INTO supabase_functions.hooks (hook_table_id, hook_name, request_id)
  VALUES (TG_RELID, TG_NAME, request_id);
  RETURN NEW;
END $$;
ALTER TABLE supabase_functions.migrations OWNER TO supabase_functions_admin;
ALTER TABLE supabase_functions.hooks OWNER TO supabase_functions_admin;
ALTER FUNCTION supabase_functions.http_request() OWNER TO supabase_functions_admin;
GRANT USAGE ON SCHEMA supabase_functions, net TO postgres, anon, authenticated, service_role,
  supabase_functions_admin;
GRANT ALL ON ALL TABLES IN SCHEMA net TO supabase_functions_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA net TO supabase_functions_admin;
GRANT EXECUTE ON FUNCTION supabase_functions.http_request() TO postgres, anon, authenticated,
  service_role;

-- supabase_migrations: the CLI's migration history -------------------------------------------
CREATE TABLE supabase_migrations.schema_migrations (
  version text PRIMARY KEY, statements text[], name text);
ALTER TABLE supabase_migrations.schema_migrations OWNER TO postgres;

-- cron: pg_cron's schema (emulated: neither test server has pg_cron) -------------------------
CREATE TABLE cron.job (
  jobid bigserial PRIMARY KEY, schedule text NOT NULL, command text NOT NULL,
  nodename text NOT NULL DEFAULT 'localhost', nodeport integer NOT NULL DEFAULT 5432,
  database text NOT NULL DEFAULT current_database(), username text NOT NULL DEFAULT current_user,
  active boolean NOT NULL DEFAULT true, jobname text);
GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
GRANT SELECT ON cron.job TO postgres WITH GRANT OPTION;

-- pgbouncer: how the pooler looks up passwords -----------------------------------------------
CREATE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE (username text, password text) LANGUAGE sql SECURITY DEFINER
AS $$ SELECT rolname::text, rolpassword::text FROM pg_catalog.pg_authid
      WHERE rolname = p_usename $$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer;

-- public: what the API roles get on every object `postgres` or `supabase_admin` creates -----
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA extensions
  GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;

-- PostgREST's schema-cache reload and the extension hooks: event triggers, superuser-only ---
CREATE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
             WHERE schema_name IS DISTINCT FROM 'pg_temp') THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END $$;
CREATE FUNCTION extensions.pgrst_drop_watch() RETURNS event_trigger LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary) THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END $$;
CREATE FUNCTION extensions.grant_pg_net_access() RETURNS event_trigger LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
             JOIN pg_extension e ON e.oid = c.objid WHERE e.extname = 'pg_net') THEN
    GRANT USAGE ON SCHEMA net TO postgres, anon, authenticated, service_role;
  END IF;
END $$;
CREATE FUNCTION extensions.grant_pg_graphql_access() RETURNS event_trigger LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
             JOIN pg_proc p ON p.oid = c.objid
             WHERE p.proname = 'resolve' AND p.pronamespace::regnamespace::text = 'graphql') THEN
    GRANT USAGE ON SCHEMA graphql TO postgres, anon, authenticated, service_role;
  END IF;
END $$;
CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end
  EXECUTE FUNCTION extensions.pgrst_ddl_watch();
CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop
  EXECUTE FUNCTION extensions.pgrst_drop_watch();
CREATE EVENT TRIGGER issue_pg_net_access ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
  EXECUTE FUNCTION extensions.grant_pg_net_access();
CREATE EVENT TRIGGER issue_pg_graphql_access ON ddl_command_end WHEN TAG IN ('CREATE FUNCTION')
  EXECUTE FUNCTION extensions.grant_pg_graphql_access();

-- Realtime listens to this publication; the dashboard adds tables to it. ---------------------
CREATE PUBLICATION supabase_realtime;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;

-- pgsodium's transparent column encryption labels Vault's secret column (as Vault did up to
-- 0.2). A label provider records labels; none is loaded here, so the label goes into the
-- catalog directly, as pgsodium's provider would have written it.
INSERT INTO pg_catalog.pg_seclabel (objoid, classoid, objsubid, provider, label)
SELECT 'vault.secrets'::regclass, 'pg_class'::regclass, a.attnum, 'pgsodium',
       'ENCRYPT WITH KEY COLUMN key_id NONCE nonce'
FROM pg_attribute a WHERE a.attrelid = 'vault.secrets'::regclass AND a.attname = 'secret';
