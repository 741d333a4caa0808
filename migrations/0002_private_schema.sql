-- Moves the data out of `public` into the private schema `app`, which
-- Supabase's Data API does not expose, and adds the JSON shapes the `api`
-- functions answer with. Plain SQL for PostgreSQL 15+, Supabase and PGlite.

CREATE SCHEMA IF NOT EXISTS app;

ALTER TABLE public.users SET SCHEMA app;
ALTER TABLE public.refresh_tokens SET SCHEMA app;
ALTER TABLE public.api_keys SET SCHEMA app;
ALTER TABLE public.conversations SET SCHEMA app;
ALTER TABLE public.messages SET SCHEMA app;
ALTER TABLE public.usage_ledger SET SCHEMA app;
ALTER TABLE public.idempotency_keys SET SCHEMA app;

-- The trigger functions follow their tables, with fixed search paths.
ALTER FUNCTION public.set_updated_at() SET SCHEMA app;
ALTER FUNCTION app.set_updated_at() SET search_path = '';
ALTER FUNCTION public.messages_touch_conversation() SET SCHEMA app;

-- Keeps conversations.message_count and updated_at right as messages come and go.
CREATE OR REPLACE FUNCTION app.messages_touch_conversation() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE app.conversations
           SET message_count = message_count + 1
         WHERE id = NEW.conversation_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE app.conversations
           SET message_count = greatest(message_count - 1, 0)
         WHERE id = OLD.conversation_id;
    END IF;
    RETURN NULL;
END;
$$;

-- A timestamp as the API shows it: RFC 3339, UTC, milliseconds.
CREATE OR REPLACE FUNCTION app.ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A timestamp as a keyset cursor: microseconds since the Unix epoch.
CREATE OR REPLACE FUNCTION app.micros(t timestamptz) RETURNS bigint
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

-- The inverse of app.micros.
CREATE OR REPLACE FUNCTION app.from_micros(us bigint) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT timestamptz '1970-01-01 00:00:00+00' + us * interval '1 microsecond'
$$;

-- The contract's user object.
CREATE OR REPLACE FUNCTION app.user_json(u app.users) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'created_at', app.ts(u.created_at))
$$;

-- The contract's Conversation object.
CREATE OR REPLACE FUNCTION app.conversation_json(c app.conversations) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_build_object(
        'id', c.id, 'title', c.title, 'model', c.model,
        'system_prompt', c.system_prompt, 'metadata', c.metadata,
        'message_count', c.message_count,
        'created_at', app.ts(c.created_at), 'updated_at', app.ts(c.updated_at))
$$;

-- The contract's Message object.
CREATE OR REPLACE FUNCTION app.message_json(m app.messages) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'conversation_id', m.conversation_id, 'role', m.role,
        'content', m.content, 'thinking', m.thinking, 'model', m.model,
        'provider', m.provider, 'status', m.status,
        'input_tokens', m.input_tokens, 'output_tokens', m.output_tokens,
        'cost_usd', m.cost_usd::float8, 'latency_ms', m.latency_ms,
        'created_at', app.ts(m.created_at))
$$;

-- The contract's API key object (never the key itself).
CREATE OR REPLACE FUNCTION app.api_key_json(k app.api_keys) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT jsonb_build_object(
        'id', k.id, 'name', k.name, 'prefix', k.prefix,
        'created_at', app.ts(k.created_at),
        'last_used_at', app.ts(k.last_used_at))
$$;

-- True when the user exists (an access token outlives nothing else, but a
-- removed account must stop authenticating at once).
CREATE OR REPLACE FUNCTION app.known_user(uid uuid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM app.users WHERE id = uid)
$$;

-- Cost in USD of a model call, exact in numeric: prices are per million tokens.
CREATE OR REPLACE FUNCTION app.cost(input_tokens integer, output_tokens integer,
                                    input_price text, output_price text) RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    SELECT (coalesce(input_tokens, 0)::numeric * coalesce(input_price, '0')::numeric
          + coalesce(output_tokens, 0)::numeric * coalesce(output_price, '0')::numeric) / 1000000
$$;

-- Appends usage ledger rows (a JSON array of model calls) for one user.
-- A conversation deleted meanwhile is recorded as NULL; so is a message
-- that was not stored.
CREATE OR REPLACE FUNCTION app.record_usage(uid uuid, conversation uuid, entries jsonb)
RETURNS integer
LANGUAGE sql VOLATILE SET search_path = '' AS $$
    WITH ins AS (
        INSERT INTO app.usage_ledger (user_id, conversation_id, message_id, kind, model, provider,
                                      input_tokens, output_tokens, cost_usd, latency_ms,
                                      success, error)
        SELECT uid,
               (SELECT c.id FROM app.conversations c WHERE c.id = conversation),
               (SELECT m.id FROM app.messages m WHERE m.id = (e->>'message_id')::uuid),
               e->>'kind', e->>'model', e->>'provider',
               coalesce((e->>'input_tokens')::int, 0), coalesce((e->>'output_tokens')::int, 0),
               app.cost((e->>'input_tokens')::int, (e->>'output_tokens')::int,
                        e->>'input_price', e->>'output_price'),
               (e->>'latency_ms')::int, coalesce((e->>'success')::boolean, false), e->>'error'
          FROM jsonb_array_elements(coalesce(entries, '[]'::jsonb)) AS e
        RETURNING 1
    )
    SELECT count(*)::int FROM ins
$$;
