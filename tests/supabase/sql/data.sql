-- Rows as the services write them, each as its own role (run by `supabase_admin`).
-- Deterministic: the same build always holds the same rows.

SET ROLE supabase_auth_admin;
INSERT INTO auth.instances VALUES ('00000000-0000-0000-0000-000000000000', NULL, NULL,
                                   '2024-06-01 00:00:00+00', '2024-06-01 00:00:00+00');
INSERT INTO auth.schema_migrations
SELECT to_char(date '2021-01-01' + i * 9, 'YYYYMMDD') || '120000' FROM generate_series(0, 79) i;
-- Signing up: GoTrue inserts the user (the sign-up trigger adds the profile) and an identity.
INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin,
                        created_at, updated_at, phone, phone_confirmed_at, is_anonymous)
SELECT '00000000-0000-0000-0000-000000000000', md5('user' || i)::uuid, 'authenticated',
       'authenticated', 'user' || i || '@company' || (1 + i % 20) || '.example',
       '$2a$10$' || substr(md5('salt' || i) || md5('hash' || i), 1, 53),
       CASE WHEN i % 7 <> 0 THEN timestamptz '2025-01-01' + i * interval '1 hour' END,
       timestamptz '2025-06-01' + i * interval '1 minute',
       '{"provider": "email", "providers": ["email"]}',
       jsonb_build_object('full_name', 'User ' || i, 'n', i), false,
       timestamptz '2025-01-01' + i * interval '1 hour',
       timestamptz '2025-01-01' + i * interval '1 hour',
       CASE WHEN i % 5 = 0 THEN '+1555' || lpad(i::text, 7, '0') END,
       CASE WHEN i % 10 = 0 THEN timestamptz '2025-02-01' + i * interval '1 hour' END,
       false
FROM generate_series(1, 60) i;
INSERT INTO auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at,
                             created_at, updated_at)
SELECT md5('identity' || u.id)::uuid, u.id::text, u.id,
       jsonb_build_object('sub', u.id::text, 'email', upper(u.email), 'email_verified',
                          u.email_confirmed_at IS NOT NULL),
       'email', u.last_sign_in_at, u.created_at, u.updated_at
FROM auth.users u;
INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, not_after, user_agent, ip)
SELECT md5('session' || u.id)::uuid, u.id, u.last_sign_in_at, u.last_sign_in_at,
       CASE WHEN (u.raw_user_meta_data ->> 'n')::int % 4 = 0 THEN 'aal2' ELSE 'aal1' END::auth.aal_level,
       NULL, 'Mozilla/5.0 (QuotePro)',
       ('10.0.' || (u.raw_user_meta_data ->> 'n') || '.1')::inet
FROM auth.users u WHERE (u.raw_user_meta_data ->> 'n')::int % 2 = 0;
INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
                                 session_id)
SELECT '00000000-0000-0000-0000-000000000000', substr(md5('token' || s.id || k), 1, 12),
       s.user_id::text, k < 3, s.created_at + k * interval '1 hour',
       s.created_at + k * interval '1 hour', s.id
FROM auth.sessions s, generate_series(1, 3) k ORDER BY s.id, k;
INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                              updated_at, secret)
SELECT md5('factor' || s.user_id)::uuid, s.user_id, 'phone app', 'totp', 'verified',
       s.created_at, s.created_at, encode(sha256(convert_to('totp' || s.user_id, 'UTF8')), 'hex')
FROM auth.sessions s WHERE s.aal = 'aal2';
INSERT INTO auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
                             provider_type, created_at, updated_at)
SELECT md5('flow' || i)::uuid, md5('user' || i)::uuid, md5('code' || i), 's256',
       md5('challenge' || i), 'email', timestamptz '2025-06-02' + i * interval '1 minute',
       timestamptz '2025-06-02' + i * interval '1 minute'
FROM generate_series(1, 5) i;
INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('audit' || u.id || k)::uuid,
       json_build_object('action', (ARRAY['user_signedup', 'login', 'logout'])[k],
                         'actor_id', u.id, 'actor_username', u.email),
       u.created_at + k * interval '1 day', '10.0.0.' || k
FROM auth.users u, generate_series(1, 3) k;
RESET ROLE;

-- The app: profiles join companies, quotes get their authors, migrations are recorded.
SET ROLE postgres;
UPDATE public.profiles p SET company_id = 1 + (u.raw_user_meta_data ->> 'n')::int % 20,
                             role = CASE WHEN (u.raw_user_meta_data ->> 'n')::int <= 20
                                         THEN 'owner' ELSE 'member' END
FROM auth.users u WHERE u.id = p.id;
-- authors are members of the quote's company (user n works for company 1 + n % 20)
UPDATE public.quotes q
SET created_by = md5('user' || coalesce(nullif(20 * (q.id % 3) + (q.company_id - 1) % 20, 0),
                                         60))::uuid
WHERE q.id % 7 <> 0;
INSERT INTO supabase_migrations.schema_migrations (version, name, statements)
VALUES ('20250101120000', 'quotepro_tables', ARRAY['create table companies ...']),
       ('20250201120000', 'profiles_and_rls', ARRAY['create table profiles ...']),
       ('20250301120000', 'quote_webhook', ARRAY['create trigger quote_accepted_webhook ...']);
RESET ROLE;

SET ROLE supabase_storage_admin;
INSERT INTO storage.migrations (id, name, hash, executed_at)
SELECT i, 'storage-migration-' || i, substr(md5('migration' || i), 1, 40),
       timestamp '2024-06-01' + i * interval '1 day'
FROM generate_series(0, 24) i;
INSERT INTO storage.buckets (id, name, public, file_size_limit, allowed_mime_types, created_at,
                             updated_at)
VALUES ('quote-pdfs', 'quote-pdfs', false, 10485760, ARRAY['application/pdf'],
        '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00'),
       ('avatars', 'avatars', true, NULL, NULL, '2025-01-01 00:00:00+00',
        '2025-01-01 00:00:00+00');
RESET ROLE;
-- The Storage API records each uploaded file (the file itself goes to the object store).
INSERT INTO storage.objects (id, bucket_id, name, owner, owner_id, created_at, updated_at,
                             last_accessed_at, metadata, version)
SELECT md5('object' || q.id)::uuid, 'quote-pdfs',
       'company-' || q.company_id || '/quote-' || q.id || '.pdf', q.created_by,
       q.created_by::text, q.created_at, q.created_at, q.created_at,
       jsonb_build_object('size', 20000 + q.id, 'mimetype', 'application/pdf',
                          'eTag', '"' || md5('pdf' || q.id) || '"'),
       md5('version' || q.id)
FROM public.quotes q WHERE q.created_by IS NOT NULL AND q.id <= 400;

-- The services' own bookkeeping, and one Vault secret.
INSERT INTO realtime.schema_migrations
SELECT 20211116024918 + i, timestamp '2024-06-01' + i * interval '1 hour'
FROM generate_series(0, 19) i;
INSERT INTO realtime.subscription (subscription_id, entity, claims, created_at)
VALUES (md5('subscription')::uuid, 'public.quotes', '{"role": "authenticated"}',
        '2025-06-01 00:00:00');
INSERT INTO realtime.messages (topic, extension, payload, event, inserted_at)
VALUES ('quotes', 'broadcast', '{"accepted": 1}', 'quote-accepted', '2025-06-01 00:00:00');
INSERT INTO supabase_functions.migrations VALUES ('initial', '2024-06-01 00:00:00+00'),
                                                 ('20210809183423_update_grants',
                                                  '2024-06-01 00:00:00+00');
INSERT INTO cron.job (schedule, command, jobname, username)
VALUES ('0 3 * * *', 'DELETE FROM auth.audit_log_entries WHERE created_at < now() - interval ''90 days''',
        'prune-audit-log', 'postgres');
INSERT INTO pgsodium.key (id, name, key_id) VALUES (md5('vault key')::uuid, 'vault', 1);
SELECT vault.create_secret('sk_test_backstop_stand_in', 'stripe_api_key', 'payments');
