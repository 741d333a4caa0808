-- The database API, part 2: conversations, message pages, titles, usage.
-- Every function takes the caller's user id and checks it first
-- (`unauthenticated` when the account is gone); rows of other users are
-- `not_found`.

-- {user_id, title, model, system_prompt, metadata}
-- → {"outcome":"created", conversation} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.create_conversation(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    c app.conversations;
BEGIN
    IF NOT app.known_user(($1->>'user_id')::uuid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    INSERT INTO app.conversations (user_id, title, model, system_prompt, metadata)
    VALUES (($1->>'user_id')::uuid, $1->>'title', $1->>'model', $1->>'system_prompt',
            coalesce(nullif($1->'metadata', 'null'::jsonb), '{}'::jsonb))
    RETURNING * INTO c;
    RETURN jsonb_build_object('outcome', 'created', 'conversation', app.conversation_json(c));
END;
$$;

-- {user_id, id, max_messages}
-- → {"outcome":"found", conversation (with messages: at most max_messages
--   of the newest, oldest first), messages_truncated}
-- | {"outcome":"not_found"} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.get_conversation(jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    n constant int := greatest(coalesce(($1->>'max_messages')::int, 100), 0);
    c app.conversations;
    msgs jsonb;
    shown int;
BEGIN
    IF NOT app.known_user(uid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    SELECT * INTO c FROM app.conversations WHERE id = ($1->>'id')::uuid AND user_id = uid;
    IF c.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    SELECT coalesce(jsonb_agg(app.message_json(m) ORDER BY m.seq), '[]'::jsonb), count(*)
      INTO msgs, shown
      FROM (SELECT * FROM app.messages
             WHERE conversation_id = c.id AND user_id = uid
             ORDER BY seq DESC LIMIT n) AS m;
    RETURN jsonb_build_object(
        'outcome', 'found',
        'conversation', app.conversation_json(c) || jsonb_build_object('messages', msgs),
        'messages_truncated', shown < c.message_count);
END;
$$;

-- {user_id, limit, after?:{at_us, id}, q?} → {"outcome":"ok", items
-- (newest updated first, at most limit), has_more, last?:{at_us, id}}
-- | {"outcome":"unauthenticated"}. `q` is a LIKE pattern (escaped by the caller).
CREATE OR REPLACE FUNCTION api.list_conversations(jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    lim constant int := greatest(coalesce(($1->>'limit')::int, 20), 1);
    after_at constant timestamptz := app.from_micros(($1->'after'->>'at_us')::bigint);
    after_id constant uuid := ($1->'after'->>'id')::uuid;
    v_pattern constant text := $1->>'q';
    v_items jsonb;
    v_more boolean;
    last_at timestamptz;
    last_id uuid;
BEGIN
    IF NOT app.known_user(uid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    WITH page AS (
        SELECT c, row_number() OVER (ORDER BY c.updated_at DESC, c.id DESC) AS i
          FROM app.conversations c
         WHERE c.user_id = uid
           AND (after_at IS NULL OR (c.updated_at, c.id) < (after_at, after_id))
           AND (v_pattern IS NULL OR c.title ILIKE v_pattern ESCAPE '\')
         ORDER BY c.updated_at DESC, c.id DESC
         LIMIT lim + 1
    )
    SELECT coalesce(jsonb_agg(app.conversation_json(c) ORDER BY i) FILTER (WHERE i <= lim), '[]'::jsonb),
           count(*) > lim,
           (array_agg((c).updated_at ORDER BY i DESC) FILTER (WHERE i <= lim))[1],
           (array_agg((c).id ORDER BY i DESC) FILTER (WHERE i <= lim))[1]
      INTO v_items, v_more, last_at, last_id
      FROM page;
    RETURN jsonb_build_object(
        'outcome', 'ok', 'items', v_items, 'has_more', v_more,
        'last', CASE WHEN last_id IS NULL THEN NULL
                     ELSE jsonb_build_object('at_us', app.micros(last_at), 'id', last_id) END);
END;
$$;

-- {user_id, id, patch:{title?, model?, system_prompt?, metadata?}}: keys
-- present are set (title/system_prompt may be null to clear them)
-- → {"outcome":"updated", conversation} | {"outcome":"not_found"} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.update_conversation(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    p constant jsonb := coalesce($1->'patch', '{}'::jsonb);
    c app.conversations;
BEGIN
    IF NOT app.known_user(uid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    IF p = '{}'::jsonb THEN
        SELECT * INTO c FROM app.conversations WHERE id = ($1->>'id')::uuid AND user_id = uid;
    ELSE
        UPDATE app.conversations SET
            title = CASE WHEN p ? 'title' THEN p->>'title' ELSE title END,
            model = coalesce(p->>'model', model),
            system_prompt = CASE WHEN p ? 'system_prompt' THEN p->>'system_prompt' ELSE system_prompt END,
            metadata = coalesce(nullif(p->'metadata', 'null'::jsonb), metadata)
         WHERE id = ($1->>'id')::uuid AND user_id = uid
        RETURNING * INTO c;
    END IF;
    IF c.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    RETURN jsonb_build_object('outcome', 'updated', 'conversation', app.conversation_json(c));
END;
$$;

-- {user_id, id} → {"outcome":"deleted"|"not_found"|"unauthenticated"};
-- its messages go by cascade in the same statement.
CREATE OR REPLACE FUNCTION api.delete_conversation(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    IF NOT app.known_user(($1->>'user_id')::uuid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    DELETE FROM app.conversations WHERE id = ($1->>'id')::uuid AND user_id = ($1->>'user_id')::uuid;
    RETURN jsonb_build_object('outcome', CASE WHEN FOUND THEN 'deleted' ELSE 'not_found' END);
END;
$$;

-- {user_id, conversation_id, limit, after_seq?} → {"outcome":"ok", items
-- (oldest first, at most limit), has_more, last_seq} | {"outcome":"not_found"}
-- | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.list_messages(jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
    lim constant int := greatest(coalesce(($1->>'limit')::int, 20), 1);
    v_after constant bigint := ($1->>'after_seq')::bigint;
    v_items jsonb;
    v_more boolean;
    v_last bigint;
BEGIN
    IF NOT app.known_user(uid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM app.conversations WHERE id = cid AND user_id = uid) THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    WITH page AS (
        SELECT m, m.seq, row_number() OVER (ORDER BY m.seq) AS i
          FROM app.messages m
         WHERE m.conversation_id = cid AND m.user_id = uid AND (v_after IS NULL OR m.seq > v_after)
         ORDER BY m.seq
         LIMIT lim + 1
    )
    SELECT coalesce(jsonb_agg(app.message_json(m) ORDER BY i) FILTER (WHERE i <= lim), '[]'::jsonb),
           count(*) > lim,
           max(seq) FILTER (WHERE i <= lim)
      INTO v_items, v_more, v_last
      FROM page;
    RETURN jsonb_build_object('outcome', 'ok', 'items', v_items, 'has_more', v_more, 'last_seq', v_last);
END;
$$;

-- {user_id, conversation_id, title?, usage:[ledger entries]}
-- → {"outcome":"titled"|"unchanged"}: records the title call's usage and
-- sets the title when the conversation still has none.
CREATE OR REPLACE FUNCTION api.set_title(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
BEGIN
    PERFORM app.record_usage(uid, cid, $1->'usage');
    IF $1->>'title' IS NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged');
    END IF;
    UPDATE app.conversations SET title = $1->>'title'
     WHERE id = cid AND user_id = uid AND title IS NULL;
    RETURN jsonb_build_object('outcome', CASE WHEN FOUND THEN 'titled' ELSE 'unchanged' END);
END;
$$;

-- {user_id, from?, to?} (UTC dates, inclusive) → {"outcome":"ok", stats}
-- with totals, by_model and by_day, straight from the ledger.
CREATE OR REPLACE FUNCTION api.usage_stats(jsonb) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = '' AS $$
    WITH l AS (
        SELECT * FROM app.usage_ledger
         WHERE user_id = ($1->>'user_id')::uuid
           AND ($1->>'from' IS NULL
                OR created_at >= (($1->>'from')::date)::timestamp AT TIME ZONE 'UTC')
           AND ($1->>'to' IS NULL
                OR created_at < (($1->>'to')::date + 1)::timestamp AT TIME ZONE 'UTC')
    ), m AS (
        SELECT model, provider, count(*) AS n, coalesce(sum(input_tokens), 0) AS i,
               coalesce(sum(output_tokens), 0) AS o, coalesce(sum(cost_usd), 0) AS c
          FROM l GROUP BY model, provider
    ), d AS (
        SELECT to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day,
               count(*) AS n, coalesce(sum(input_tokens), 0) AS i,
               coalesce(sum(output_tokens), 0) AS o, coalesce(sum(cost_usd), 0) AS c
          FROM l GROUP BY 1
    )
    SELECT CASE WHEN NOT app.known_user(($1->>'user_id')::uuid)
                THEN jsonb_build_object('outcome', 'unauthenticated')
                ELSE jsonb_build_object('outcome', 'ok', 'stats', jsonb_build_object(
        'total_requests', (SELECT count(*) FROM l),
        'total_input_tokens', (SELECT coalesce(sum(input_tokens), 0) FROM l),
        'total_output_tokens', (SELECT coalesce(sum(output_tokens), 0) FROM l),
        'total_cost_usd', (SELECT coalesce(sum(cost_usd), 0)::float8 FROM l),
        'by_model', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'model', model, 'provider', provider, 'requests', n, 'input_tokens', i,
                'output_tokens', o, 'cost_usd', c::float8) ORDER BY model, provider) FROM m),
            '[]'::jsonb),
        'by_day', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'date', day, 'requests', n, 'input_tokens', i, 'output_tokens', o,
                'cost_usd', c::float8) ORDER BY day) FROM d), '[]'::jsonb)))
           END
$$;
