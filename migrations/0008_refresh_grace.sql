-- Refresh tokens: a grace window for the same rotation repeated. Two
-- tabs refreshing with the same token at once, or a client retrying after
-- it lost the response, present a token that was just used. The caller
-- derives the successor from the token presented (a keyed hash, see
-- src/auth/secrets.rs), so a repeat asks for the very successor the first
-- rotation stored: within `grace_seconds` (default 10) of the rotation, and
-- while that successor is unused and unrevoked, the repeat is answered as
-- the rotation it repeats. Anything else presenting a used token is reuse:
-- the whole family is revoked, as before.

-- {token_hash, new_token_hash, new_expires_at, grace_seconds?}
-- → {"outcome":"rotated", user} | {"outcome":"reused"} | {"outcome":"invalid"}.
CREATE OR REPLACE FUNCTION api.refresh(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    t app.refresh_tokens;
    u app.users;
    next_id uuid;
    grace constant interval :=
        coalesce(($1->>'grace_seconds')::int, 10) * interval '1 second';
BEGIN
    SELECT * INTO t FROM app.refresh_tokens WHERE token_hash = $1->>'token_hash' FOR UPDATE;
    IF t.id IS NULL OR t.revoked_at IS NOT NULL
       OR (t.used_at IS NULL AND t.expires_at <= now()) THEN
        RETURN jsonb_build_object('outcome', 'invalid');
    END IF;
    IF t.used_at IS NOT NULL THEN
        -- The same rotation again, within the grace window: the successor
        -- asked for is the one this token was replaced by, still unused.
        IF t.used_at > now() - grace AND EXISTS (
            SELECT 1 FROM app.refresh_tokens n
             WHERE n.id = t.replaced_by AND n.token_hash = $1->>'new_token_hash'
               AND n.revoked_at IS NULL AND n.used_at IS NULL
        ) THEN
            SELECT * INTO u FROM app.users WHERE id = t.user_id;
            IF u.id IS NULL THEN
                RETURN jsonb_build_object('outcome', 'invalid');
            END IF;
            RETURN jsonb_build_object('outcome', 'rotated', 'user', app.user_json(u));
        END IF;
        UPDATE app.refresh_tokens SET revoked_at = now()
         WHERE family_id = t.family_id AND revoked_at IS NULL;
        RETURN jsonb_build_object('outcome', 'reused');
    END IF;
    SELECT * INTO u FROM app.users WHERE id = t.user_id;
    IF u.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'invalid');
    END IF;
    INSERT INTO app.refresh_tokens (user_id, family_id, token_hash, expires_at)
    VALUES (t.user_id, t.family_id, $1->>'new_token_hash', ($1->>'new_expires_at')::timestamptz)
    RETURNING id INTO next_id;
    UPDATE app.refresh_tokens SET used_at = now(), replaced_by = next_id WHERE id = t.id;
    RETURN jsonb_build_object('outcome', 'rotated', 'user', app.user_json(u));
END;
$$;

