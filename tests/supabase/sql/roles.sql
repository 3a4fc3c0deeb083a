-- The roles of a Supabase cluster, as its bootstrap superuser `supabase_admin` creates them.
-- Written for Backstop's tests after the layout of Supabase's images (supabase/postgres init
-- scripts and migrations); attributes as a hosted project reports them.

-- `postgres` is what a project's owner logs in as. Supabase created it a superuser and then
-- demoted it (demote.sql); until then it builds nothing of its own.
CREATE ROLE postgres LOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS;

-- The API roles PostgREST switches to, by JWT claim: policies and grants name them.
CREATE ROLE anon NOLOGIN INHERIT;
CREATE ROLE authenticated NOLOGIN INHERIT;
CREATE ROLE service_role NOLOGIN INHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;

-- The services' own roles, each owning its schema's tables.
CREATE ROLE supabase_auth_admin LOGIN NOINHERIT CREATEROLE;
CREATE ROLE supabase_storage_admin LOGIN NOINHERIT CREATEROLE;
CREATE ROLE supabase_functions_admin LOGIN NOINHERIT CREATEROLE;
CREATE ROLE supabase_replication_admin LOGIN REPLICATION;
CREATE ROLE supabase_read_only_user LOGIN BYPASSRLS;
GRANT pg_read_all_data TO supabase_read_only_user;
CREATE ROLE dashboard_user NOLOGIN CREATEDB CREATEROLE REPLICATION;
CREATE ROLE pgbouncer LOGIN;
GRANT authenticator TO supabase_storage_admin;

-- pgsodium's key roles (its extension script creates them on Supabase).
CREATE ROLE pgsodium_keyiduser NOLOGIN;
CREATE ROLE pgsodium_keyholder NOLOGIN IN ROLE pgsodium_keyiduser;
CREATE ROLE pgsodium_keymaker NOLOGIN IN ROLE pgsodium_keyholder;
GRANT pgsodium_keyholder TO service_role;

-- What `postgres` may do without being a superuser: read everything, act as the API and
-- service roles (so it can manage auth triggers and storage policies), signal backends.
GRANT pg_read_all_data, pg_signal_backend, pg_monitor TO postgres;
GRANT anon, authenticated, service_role, supabase_auth_admin, supabase_storage_admin
  TO postgres;
GRANT pgsodium_keyiduser, pgsodium_keyholder, pgsodium_keymaker TO postgres WITH ADMIN OPTION;
-- Supabase lets `postgres` turn triggers off for a load (its migration guide restores data
-- with session_replication_role = replica).
GRANT SET ON PARAMETER session_replication_role TO postgres;

-- Per-role settings a restore of roles would carry.
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE authenticator SET lock_timeout = '8s';
ALTER ROLE postgres SET search_path = "$user", public, extensions;
ALTER ROLE supabase_admin SET search_path = "$user", public, auth, extensions;
ALTER ROLE supabase_auth_admin SET search_path = auth;
ALTER ROLE supabase_auth_admin SET idle_in_transaction_session_timeout = 60000;
ALTER ROLE supabase_storage_admin SET search_path = storage;
