-- The managed schemas of a Supabase database, created by `supabase_admin` before any extension.
-- graphql, vault, pgsodium and net are created by their extensions (or their stand-ins).

CREATE SCHEMA extensions AUTHORIZATION postgres;
CREATE SCHEMA auth AUTHORIZATION supabase_admin;
CREATE SCHEMA storage AUTHORIZATION supabase_admin;
CREATE SCHEMA realtime AUTHORIZATION supabase_admin;
CREATE SCHEMA graphql_public AUTHORIZATION supabase_admin;
CREATE SCHEMA supabase_functions AUTHORIZATION supabase_admin;
CREATE SCHEMA supabase_migrations AUTHORIZATION postgres;
CREATE SCHEMA cron AUTHORIZATION supabase_admin;
CREATE SCHEMA pgbouncer AUTHORIZATION pgbouncer;

ALTER SCHEMA public OWNER TO postgres;
GRANT ALL ON DATABASE postgres TO postgres, dashboard_user;
GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role;
GRANT ALL ON SCHEMA extensions TO dashboard_user;
