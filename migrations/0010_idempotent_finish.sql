-- Storing an answer may be tried again: when the database could not be
-- reached, or the connection was lost before its reply arrived, the worker
-- calls api.send_finish again (a bounded retry while the stream stays
-- open). A first call that committed but whose reply was lost must not be
-- stored twice, so a finish is keyed on the send's id (`send_id`: the id
-- the worker gave the assistant message before calling the model, also
-- when no answer came). Its ledger rows carry that id; a call finding rows
-- (or the answer) of its send already stored stores nothing more and
-- answers what the first stored. Concurrent calls of one send are
-- serialised by a transaction-scoped advisory lock on the id.

ALTER TABLE app.usage_ledger ADD COLUMN IF NOT EXISTS send_id uuid;
CREATE INDEX IF NOT EXISTS usage_ledger_send_idx ON app.usage_ledger (send_id)
    WHERE send_id IS NOT NULL;

-- As in 0002, and: each entry's `send_id`, when given, is kept.
CREATE OR REPLACE FUNCTION app.record_usage(uid uuid, conversation uuid, entries jsonb)
RETURNS integer
LANGUAGE sql VOLATILE SET search_path = '' AS $$
    WITH ins AS (
        INSERT INTO app.usage_ledger (user_id, conversation_id, message_id, kind, model, provider,
                                      input_tokens, output_tokens, cost_usd, latency_ms,
                                      success, error, send_id)
        SELECT uid,
               (SELECT c.id FROM app.conversations c WHERE c.id = conversation),
               (SELECT m.id FROM app.messages m WHERE m.id = (e->>'message_id')::uuid),
               e->>'kind', e->>'model', e->>'provider',
               coalesce((e->>'input_tokens')::int, 0), coalesce((e->>'output_tokens')::int, 0),
               app.cost((e->>'input_tokens')::int, (e->>'output_tokens')::int,
                        e->>'input_price', e->>'output_price'),
               (e->>'latency_ms')::int, coalesce((e->>'success')::boolean, false), e->>'error',
               (e->>'send_id')::uuid
          FROM jsonb_array_elements(coalesce(entries, '[]'::jsonb)) AS e
        RETURNING 1
    )
    SELECT count(*)::int FROM ins
$$;

-- As in 0007, with `send_id` (optional: without it nothing is deduplicated):
-- {user_id, conversation_id, user_message_id, send_id?, idempotency_key?,
--  stop_reason?, answer?, token_counts, usage}. A repeated call of a send
-- whose answer or ledger rows are stored changes nothing but answers the
-- same; the key's result is kept (or the key freed) again, which is
-- idempotent.
CREATE OR REPLACE FUNCTION api.send_finish(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
    sid constant uuid := ($1->>'send_id')::uuid;
    a constant jsonb := $1->'answer';
    m app.messages;
    u app.messages;
    body jsonb;
    repeated boolean := false;
BEGIN
    IF sid IS NOT NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('send_finish:' || sid::text, 0));
        repeated := EXISTS (SELECT 1 FROM app.usage_ledger WHERE send_id = sid)
            OR (jsonb_typeof(a) = 'object' AND EXISTS (
                SELECT 1 FROM app.messages WHERE id = (a->>'id')::uuid AND user_id = uid));
    END IF;
    IF repeated THEN
        IF jsonb_typeof(a) = 'object' THEN
            SELECT * INTO m FROM app.messages
             WHERE id = (a->>'id')::uuid AND user_id = uid AND role = 'assistant';
        END IF;
    ELSE
        -- An answer whose user message is gone is not stored (see 0007).
        IF jsonb_typeof(a) = 'object' AND EXISTS (
            SELECT 1 FROM app.messages WHERE id = ($1->>'user_message_id')::uuid AND user_id = uid
        ) THEN
            INSERT INTO app.messages (id, conversation_id, user_id, role, content, thinking, model,
                                      provider, status, input_tokens, output_tokens, cost_usd,
                                      latency_ms, content_tokens)
            SELECT (a->>'id')::uuid, c.id, c.user_id, 'assistant', a->>'content', a->>'thinking',
                   a->>'model', a->>'provider', a->>'status', (a->>'input_tokens')::int,
                   (a->>'output_tokens')::int,
                   app.cost((a->>'input_tokens')::int, (a->>'output_tokens')::int,
                            a->>'input_price', a->>'output_price'),
                   (a->>'latency_ms')::int, (a->>'content_tokens')::int
              FROM app.conversations c WHERE c.id = cid AND c.user_id = uid
            RETURNING * INTO m;
        END IF;
        UPDATE app.messages SET content_tokens = (t->>'tokens')::int
          FROM jsonb_array_elements(coalesce($1->'token_counts', '[]'::jsonb)) AS t
         WHERE app.messages.id = (t->>'id')::uuid AND app.messages.user_id = uid
           AND app.messages.content_tokens IS NULL;
        PERFORM app.record_usage(uid, cid, (
            SELECT coalesce(jsonb_agg(e || jsonb_build_object('send_id', sid)), '[]'::jsonb)
              FROM jsonb_array_elements(coalesce($1->'usage', '[]'::jsonb)) AS e));
    END IF;
    IF m.id IS NOT NULL THEN
        SELECT * INTO u FROM app.messages
         WHERE id = ($1->>'user_message_id')::uuid AND user_id = uid;
        body := jsonb_build_object('user_message', app.message_json(u),
                                   'assistant_message', app.message_json(m));
    END IF;
    IF $1->>'idempotency_key' IS NOT NULL THEN
        IF body IS NOT NULL THEN
            UPDATE app.idempotency_keys
               SET state = 'complete',
                   response = body || jsonb_strip_nulls(
                       jsonb_build_object('stop_reason', $1->>'stop_reason'))
             WHERE user_id = uid AND key = $1->>'idempotency_key'
               AND app.holds_key(user_message_id, ($1->>'user_message_id')::uuid);
        ELSE
            DELETE FROM app.idempotency_keys
             WHERE user_id = uid AND key = $1->>'idempotency_key' AND state = 'in_progress'
               AND app.holds_key(user_message_id, ($1->>'user_message_id')::uuid);
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'outcome', 'stored',
        'assistant_message', CASE WHEN m.id IS NULL THEN NULL ELSE app.message_json(m) END,
        'response', body);
END;
$$;
