-- Lock-down: only the role that runs the migrations (the worker's role)
-- and, on Supabase, `service_role` may read the data or call the API.
-- `anon` and `authenticated` (the Data API's public roles) and PUBLIC get
-- nothing. Role-specific statements are guarded, so plain PostgreSQL and
-- PGlite (which have no such roles) migrate the same way.

-- Functions created from now on by this role are not executable by PUBLIC.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA api REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

REVOKE ALL ON SCHEMA app, api FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA app FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA app FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api FROM PUBLIC;
REVOKE ALL ON TABLE public.schema_migrations FROM PUBLIC;

GRANT USAGE ON SCHEMA app, api TO CURRENT_USER;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA api TO CURRENT_USER;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO CURRENT_USER;

DO $$
DECLARE
    r text;
BEGIN
    -- The Data API's public roles: no access at all, whatever default
    -- privileges granted them while the tables lived in `public`.
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON SCHEMA app, api FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA app FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA app FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api FROM %I', r);
            EXECUTE format('REVOKE ALL ON TABLE public.schema_migrations FROM %I', r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA api REVOKE EXECUTE ON FUNCTIONS FROM %I', r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE ALL ON TABLES FROM %I', r);
        END IF;
    END LOOP;
    -- Supabase's server-side role calls the API over HTTP (SECURITY
    -- INVOKER: it needs the tables too; the schema `app` is not exposed).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT USAGE ON SCHEMA app, api TO service_role;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO service_role;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO service_role;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO service_role;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA api TO service_role;
    END IF;
END;
$$;

-- Tells PostgREST (Supabase's Data API) to reload its schema cache; a
-- no-op elsewhere.
NOTIFY pgrst, 'reload schema';
