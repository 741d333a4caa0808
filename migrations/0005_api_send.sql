-- The database API, part 3: a send is two calls. `send_prepare` runs
-- before the model is called (ownership, Idempotency-Key claim, the user
-- message, the context candidates); `send_finish` after it (the answer,
-- token counts, usage ledger, the kept result of the key).

-- Claims (user, key) for a request fingerprint: NULL when claimed now,
-- else the outcome to answer (replay, or conflict with its reason).
-- Concurrent duplicates: exactly one INSERT wins; an expired row is
-- removed and the claim retried once.
CREATE OR REPLACE FUNCTION app.claim_idempotency(uid uuid, k text, fingerprint text, cid uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
DECLARE
    k_row app.idempotency_keys;
BEGIN
    FOR attempt IN 1..2 LOOP
        INSERT INTO app.idempotency_keys (user_id, key, request_hash, conversation_id)
        VALUES (uid, k, fingerprint, cid)
        ON CONFLICT (user_id, key) DO NOTHING;
        IF FOUND THEN
            RETURN NULL;
        END IF;
        SELECT * INTO k_row FROM app.idempotency_keys WHERE user_id = uid AND key = k;
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
        RETURN jsonb_build_object('outcome', 'conflict', 'reason', 'in_progress');
    END LOOP;
    RETURN jsonb_build_object('outcome', 'conflict', 'reason', 'concurrent');
END;
$$;

-- {user_id, conversation_id, content, idempotency?:{key, request_hash},
--  budget:{tokens, bytes_per_token, max_messages}}
-- → {"outcome":"prepared", conversation, needs_title, user_message,
--    candidates:[{id, role, content, content_tokens}] oldest first, complete}
-- | {"outcome":"replay", response} | {"outcome":"conflict", reason}
-- | {"outcome":"not_found"} | {"outcome":"unauthenticated"}.
--
-- The candidates are the newest complete messages, taken newest first
-- while the tokens of those already taken stay under budget.tokens
-- (a stored count, else the byte length / bytes_per_token rounded up,
-- an estimate), and at most max_messages; `complete` says whether they reach
-- back to the first message. The new message is stored last, so it is
-- not among them.
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
        claimed := app.claim_idempotency(uid, $1->'idempotency'->>'key',
                                         $1->'idempotency'->>'request_hash', cid);
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
-- after send_prepare): removes the user message and frees the key.
CREATE OR REPLACE FUNCTION api.send_abort(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    DELETE FROM app.messages
     WHERE id = ($1->>'message_id')::uuid AND user_id = ($1->>'user_id')::uuid;
    DELETE FROM app.idempotency_keys
     WHERE user_id = ($1->>'user_id')::uuid AND key = $1->>'idempotency_key'
       AND state = 'in_progress';
    RETURN jsonb_build_object('outcome', 'aborted');
END;
$$;

-- {user_id, conversation_id, user_message_id, idempotency_key?, stop_reason?,
--  answer?:{id, content, thinking, model, provider, status, input_tokens,
--           output_tokens, content_tokens, input_price, output_price, latency_ms},
--  token_counts:[{id, tokens}], usage:[ledger entries]}
-- → {"outcome":"stored", assistant_message, response} (response is
--   {user_message, assistant_message}; both null when there was no answer
--   or the conversation is gone). One transaction: answer, counts (only
--   where none was stored), ledger, and the key's result (kept when
--   answered, freed when not).
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
    IF jsonb_typeof(a) = 'object' THEN
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
             WHERE user_id = uid AND key = $1->>'idempotency_key';
        ELSE
            DELETE FROM app.idempotency_keys
             WHERE user_id = uid AND key = $1->>'idempotency_key' AND state = 'in_progress';
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'outcome', 'stored',
        'assistant_message', CASE WHEN m.id IS NULL THEN NULL ELSE app.message_json(m) END,
        'response', body);
END;
$$;
