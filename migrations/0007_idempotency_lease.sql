-- Idempotency keys get a lease. A claimed key (`in_progress`) is held by
-- its send until `locked_until`; a send that never finished (its worker was
-- cancelled, e.g. its client left and the platform stopped it) no longer
-- blocks its key for 24 h: once the lease lapses, a retry with the same key
-- and body takes the key over and runs the send again.
--
-- The lease is chosen by the caller (`idempotency.lease_seconds`) to cover
-- the longest answer it can produce (both first-token waits and the answer
-- time limit, plus a margin for storing); see the README.
--
-- The key remembers its holder (the user message its send stored), so a
-- holder that finishes after its key was taken over stores nothing over the
-- new holder's result: its user message was removed by the take-over, so
-- its answer is not stored either (its usage still is).

ALTER TABLE app.idempotency_keys
    ADD COLUMN IF NOT EXISTS locked_until timestamptz,
    ADD COLUMN IF NOT EXISTS user_message_id uuid;

-- Keys claimed before this migration: a ten-minute lease from their claim.
UPDATE app.idempotency_keys SET locked_until = created_at + interval '10 minutes'
 WHERE state = 'in_progress' AND locked_until IS NULL;

DROP FUNCTION IF EXISTS app.claim_idempotency(uuid, text, text, uuid);

-- Whether the send that stored user message `mine` holds a key held by
-- `holder` (NULL: claimed before keys remembered their holder).
CREATE OR REPLACE FUNCTION app.holds_key(holder uuid, mine uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
    SELECT holder IS NULL OR holder = mine
$$;

-- Claims (user, key) for a request fingerprint for `lease`: NULL when
-- claimed now, else the outcome to answer (replay, or conflict with its
-- reason). Concurrent duplicates: exactly one INSERT wins; an expired row
-- is removed and the claim retried once. A key `in_progress` whose lease
-- lapsed is taken over (the row lock makes one retry win): the abandoned
-- send's user message is removed (the retry stores it again) and the lease
-- starts anew.
CREATE OR REPLACE FUNCTION app.claim_idempotency(uid uuid, k text, fingerprint text, cid uuid,
                                                 lease interval)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
DECLARE
    k_row app.idempotency_keys;
BEGIN
    FOR attempt IN 1..2 LOOP
        INSERT INTO app.idempotency_keys (user_id, key, request_hash, conversation_id, locked_until)
        VALUES (uid, k, fingerprint, cid, now() + lease)
        ON CONFLICT (user_id, key) DO NOTHING;
        IF FOUND THEN
            RETURN NULL;
        END IF;
        SELECT * INTO k_row FROM app.idempotency_keys WHERE user_id = uid AND key = k FOR UPDATE;
        IF k_row.user_id IS NULL THEN
            CONTINUE;
        END IF;
        IF k_row.expires_at <= now() THEN
            DELETE FROM app.idempotency_keys
             WHERE user_id = uid AND key = k AND expires_at <= now();
            CONTINUE;
        END IF;
        IF k_row.request_hash <> fingerprint THEN
            RETURN jsonb_build_object('outcome', 'conflict', 'reason', 'different_request');
        END IF;
        IF k_row.state = 'complete' AND k_row.response IS NOT NULL THEN
            RETURN jsonb_build_object('outcome', 'replay', 'response', k_row.response);
        END IF;
        IF k_row.locked_until IS NOT NULL AND k_row.locked_until <= now() THEN
            DELETE FROM app.messages
             WHERE id = k_row.user_message_id AND user_id = uid AND role = 'user';
            UPDATE app.idempotency_keys
               SET locked_until = now() + lease, user_message_id = NULL
             WHERE user_id = uid AND key = k;
            RETURN NULL;
        END IF;
        RETURN jsonb_build_object('outcome', 'conflict', 'reason', 'in_progress');
    END LOOP;
    RETURN jsonb_build_object('outcome', 'conflict', 'reason', 'concurrent');
END;
$$;

-- As in 0005, and: the claim carries its lease (`idempotency.lease_seconds`,
-- default 600), and the key remembers the user message stored.
CREATE OR REPLACE FUNCTION api.send_prepare(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
    budget constant bigint := coalesce(($1->'budget'->>'tokens')::bigint, 0);
    per_token constant int := greatest(coalesce(($1->'budget'->>'bytes_per_token')::int, 8), 1);
    max_n constant int := greatest(coalesce(($1->'budget'->>'max_messages')::int, 1000), 0);
    c app.conversations;
    claimed jsonb;
    picked jsonb;
    reaches_first boolean;
    m app.messages;
BEGIN
    IF NOT app.known_user(uid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    SELECT * INTO c FROM app.conversations WHERE id = cid AND user_id = uid;
    IF c.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF jsonb_typeof($1->'idempotency') = 'object' THEN
        claimed := app.claim_idempotency(
            uid, $1->'idempotency'->>'key', $1->'idempotency'->>'request_hash', cid,
            coalesce(($1->'idempotency'->>'lease_seconds')::int, 600) * interval '1 second');
        IF claimed IS NOT NULL THEN
            RETURN claimed;
        END IF;
    END IF;
    WITH newest AS (
        SELECT h.id, h.role, h.content, h.content_tokens, h.seq,
               row_number() OVER (ORDER BY h.seq DESC) AS n,
               coalesce(sum(coalesce(h.content_tokens::bigint,
                                     (octet_length(h.content) + per_token - 1) / per_token))
                        OVER (ORDER BY h.seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                        0) AS tokens_before
          FROM (SELECT * FROM app.messages
                 WHERE conversation_id = cid AND user_id = uid
                   AND status = 'complete' AND content <> ''
                 ORDER BY seq DESC
                 LIMIT max_n + 1) AS h
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'role', role, 'content', content,
                                                 'content_tokens', content_tokens)
                              ORDER BY seq) FILTER (WHERE n <= max_n AND tokens_before < budget),
                    '[]'::jsonb),
           coalesce(bool_and(n <= max_n AND tokens_before < budget), true)
      INTO picked, reaches_first
      FROM newest;
    INSERT INTO app.messages (conversation_id, user_id, role, content)
    VALUES (cid, uid, 'user', $1->>'content')
    RETURNING * INTO m;
    IF jsonb_typeof($1->'idempotency') = 'object' THEN
        UPDATE app.idempotency_keys SET user_message_id = m.id
         WHERE user_id = uid AND key = $1->'idempotency'->>'key';
    END IF;
    RETURN jsonb_build_object(
        'outcome', 'prepared',
        'conversation', app.conversation_json(c),
        'needs_title', c.message_count = 0 AND c.title IS NULL,
        'user_message', app.message_json(m),
        'candidates', picked,
        'complete', reaches_first);
END;
$$;

-- {user_id, message_id, idempotency_key?} → {"outcome":"aborted"}: undoes
-- a prepared send that will not call the model (the request was refused
-- after send_prepare): removes the user message and frees the key, if this
-- send still holds it.
CREATE OR REPLACE FUNCTION api.send_abort(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    DELETE FROM app.messages
     WHERE id = ($1->>'message_id')::uuid AND user_id = ($1->>'user_id')::uuid;
    DELETE FROM app.idempotency_keys
     WHERE user_id = ($1->>'user_id')::uuid AND key = $1->>'idempotency_key'
       AND state = 'in_progress'
       AND app.holds_key(user_message_id, ($1->>'message_id')::uuid);
    RETURN jsonb_build_object('outcome', 'aborted');
END;
$$;

-- As in 0005, and: the answer is stored only while its user message
-- exists, and the key's result is kept (or the key freed) only by the send
-- that holds it.
CREATE OR REPLACE FUNCTION api.send_finish(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
    a constant jsonb := $1->'answer';
    m app.messages;
    u app.messages;
    body jsonb;
BEGIN
    -- An answer whose user message is gone is not stored: its send was
    -- taken over by a retry after its lease lapsed (or the conversation
    -- went); its usage is still recorded.
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
    PERFORM app.record_usage(uid, cid, $1->'usage');
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

-- Functions created since the lock-down: the same grants (see 0006).
REVOKE ALL ON FUNCTION app.claim_idempotency(uuid, text, text, uuid, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.holds_key(uuid, uuid) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT EXECUTE ON FUNCTION app.claim_idempotency(uuid, text, text, uuid, interval)
            TO service_role;
        GRANT EXECUTE ON FUNCTION app.holds_key(uuid, uuid) TO service_role;
    END IF;
END;
$$;
