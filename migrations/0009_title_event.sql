-- api.set_title answers the titled conversation, so the worker can publish
-- it as a `conversation.updated` event without another round trip.
-- {user_id, conversation_id, title?, usage:[ledger entries]}
-- → {"outcome":"titled", conversation} | {"outcome":"unchanged"}.
CREATE OR REPLACE FUNCTION api.set_title(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    uid constant uuid := ($1->>'user_id')::uuid;
    cid constant uuid := ($1->>'conversation_id')::uuid;
    c app.conversations;
BEGIN
    PERFORM app.record_usage(uid, cid, $1->'usage');
    IF $1->>'title' IS NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged');
    END IF;
    UPDATE app.conversations SET title = $1->>'title'
     WHERE id = cid AND user_id = uid AND title IS NULL
    RETURNING * INTO c;
    IF c.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged');
    END IF;
    RETURN jsonb_build_object('outcome', 'titled', 'conversation', app.conversation_json(c));
END;
$$;
