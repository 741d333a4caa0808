-- The database API, part 1: accounts, refresh tokens, API keys, health.
-- Every function takes one jsonb argument and answers one jsonb value;
-- expected outcomes are values (`{"outcome": "not_found"}`), not errors.
-- SECURITY INVOKER with an empty search path: every name is qualified.

CREATE SCHEMA IF NOT EXISTS api;

-- {} → {"outcome":"ok"}: the database answers and the API is installed.
CREATE OR REPLACE FUNCTION api.health(jsonb) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = '' AS $$
    SELECT jsonb_build_object('outcome', 'ok')
$$;

-- Stores a refresh token of a family (internal to the api functions).
CREATE OR REPLACE FUNCTION app.issue_refresh(uid uuid, r jsonb) RETURNS void
LANGUAGE sql VOLATILE SET search_path = '' AS $$
    INSERT INTO app.refresh_tokens (user_id, family_id, token_hash, expires_at)
    SELECT uid, (r->>'family_id')::uuid, r->>'token_hash', (r->>'expires_at')::timestamptz
     WHERE r IS NOT NULL AND jsonb_typeof(r) = 'object'
$$;

-- {email, password_hash, refresh:{family_id, token_hash, expires_at}}
-- → {"outcome":"created", user} | {"outcome":"conflict"} (e-mail taken).
-- The account and its first refresh token are stored together.
CREATE OR REPLACE FUNCTION api.register(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    u app.users;
BEGIN
    INSERT INTO app.users (email, password_hash)
    VALUES ($1->>'email', $1->>'password_hash')
    ON CONFLICT (email) DO NOTHING
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'conflict');
    END IF;
    PERFORM app.issue_refresh(u.id, $1->'refresh');
    RETURN jsonb_build_object('outcome', 'created', 'user', app.user_json(u));
END;
$$;

-- {email, refresh?:{family_id, token_hash, expires_at}}
-- → {"outcome":"found", user, password_hash} | {"outcome":"not_found"}.
-- The refresh token is stored with the lookup, so a login is one round
-- trip: the caller hands it out only when the password verifies, and
-- revokes it (api.revoke_refresh) when not; its secret never left the caller.
CREATE OR REPLACE FUNCTION api.login(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    u app.users;
BEGIN
    SELECT * INTO u FROM app.users WHERE email = $1->>'email';
    IF u.id IS NULL THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    PERFORM app.issue_refresh(u.id, $1->'refresh');
    RETURN jsonb_build_object('outcome', 'found', 'user', app.user_json(u),
                              'password_hash', u.password_hash);
END;
$$;

-- {user_id, password_hash} → {"outcome":"updated"|"not_found"}
-- (a stronger hash of the same password, after a login).
CREATE OR REPLACE FUNCTION api.set_password_hash(jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
    WITH up AS (
        UPDATE app.users SET password_hash = $1->>'password_hash'
         WHERE id = ($1->>'user_id')::uuid RETURNING 1
    )
    SELECT jsonb_build_object('outcome', CASE WHEN EXISTS (SELECT 1 FROM up)
                                              THEN 'updated' ELSE 'not_found' END)
$$;

-- {token_hash} → {"outcome":"revoked", count}: revokes one token (a login
-- whose password did not verify).
CREATE OR REPLACE FUNCTION api.revoke_refresh(jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
    WITH up AS (
        UPDATE app.refresh_tokens SET revoked_at = now()
         WHERE token_hash = $1->>'token_hash' AND revoked_at IS NULL RETURNING 1
    )
    SELECT jsonb_build_object('outcome', 'revoked', 'count', (SELECT count(*) FROM up))
$$;

-- {token_hash, new_token_hash, new_expires_at}
-- → {"outcome":"rotated", user} | {"outcome":"reused"} | {"outcome":"invalid"}.
-- A valid token is marked used and replaced in its family; presenting a
-- used one revokes the whole family. The row lock makes two concurrent
-- presentations of one token count as reuse.
CREATE OR REPLACE FUNCTION api.refresh(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    t app.refresh_tokens;
    u app.users;
    next_id uuid;
BEGIN
    SELECT * INTO t FROM app.refresh_tokens WHERE token_hash = $1->>'token_hash' FOR UPDATE;
    IF t.id IS NULL OR t.revoked_at IS NOT NULL
       OR (t.used_at IS NULL AND t.expires_at <= now()) THEN
        RETURN jsonb_build_object('outcome', 'invalid');
    END IF;
    IF t.used_at IS NOT NULL THEN
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

-- {user_id, token_hash} → {"outcome":"revoked", count}: logout revokes the
-- family of one of the user's refresh tokens (count 0 when it was not theirs).
CREATE OR REPLACE FUNCTION api.logout(jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
    WITH up AS (
        UPDATE app.refresh_tokens SET revoked_at = now()
         WHERE revoked_at IS NULL AND family_id IN
               (SELECT family_id FROM app.refresh_tokens
                 WHERE token_hash = $1->>'token_hash' AND user_id = ($1->>'user_id')::uuid)
        RETURNING 1
    )
    SELECT jsonb_build_object('outcome', 'revoked', 'count', (SELECT count(*) FROM up))
$$;

-- {user_id} → {"outcome":"found", user} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.me(jsonb) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = '' AS $$
    SELECT coalesce(
        (SELECT jsonb_build_object('outcome', 'found', 'user', app.user_json(u))
           FROM app.users u WHERE u.id = ($1->>'user_id')::uuid),
        jsonb_build_object('outcome', 'unauthenticated'))
$$;

-- {key_hash} → {"outcome":"found", user_id} | {"outcome":"not_found"}.
-- Records the use (at most about once a minute per key) in the same statement.
CREATE OR REPLACE FUNCTION api.key_owner(jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
    WITH k AS (
        SELECT id, user_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
          FROM app.api_keys WHERE key_hash = $1->>'key_hash'
    ), touched AS (
        UPDATE app.api_keys a SET last_used_at = now()
          FROM k WHERE a.id = k.id AND k.stale RETURNING 1
    )
    SELECT coalesce(
        (SELECT jsonb_build_object('outcome', 'found', 'user_id', k.user_id) FROM k),
        jsonb_build_object('outcome', 'not_found'))
$$;

-- {user_id, name, prefix, key_hash} → {"outcome":"created", key} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.create_api_key(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
DECLARE
    k app.api_keys;
BEGIN
    IF NOT app.known_user(($1->>'user_id')::uuid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    INSERT INTO app.api_keys (user_id, name, prefix, key_hash)
    VALUES (($1->>'user_id')::uuid, $1->>'name', $1->>'prefix', $1->>'key_hash')
    RETURNING * INTO k;
    RETURN jsonb_build_object('outcome', 'created', 'key', app.api_key_json(k));
END;
$$;

-- {user_id} → {"outcome":"ok", keys:[…] newest first} | {"outcome":"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.list_api_keys(jsonb) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = '' AS $$
    SELECT CASE WHEN NOT app.known_user(($1->>'user_id')::uuid)
                THEN jsonb_build_object('outcome', 'unauthenticated')
                ELSE jsonb_build_object('outcome', 'ok', 'keys', coalesce(
                    (SELECT jsonb_agg(app.api_key_json(k) ORDER BY k.created_at DESC, k.id DESC)
                       FROM app.api_keys k WHERE k.user_id = ($1->>'user_id')::uuid),
                    '[]'::jsonb))
           END
$$;

-- {user_id, id} → {"outcome":"deleted"|"not_found"|"unauthenticated"}.
CREATE OR REPLACE FUNCTION api.delete_api_key(jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = '' AS $$
BEGIN
    IF NOT app.known_user(($1->>'user_id')::uuid) THEN
        RETURN jsonb_build_object('outcome', 'unauthenticated');
    END IF;
    DELETE FROM app.api_keys WHERE id = ($1->>'id')::uuid AND user_id = ($1->>'user_id')::uuid;
    RETURN jsonb_build_object('outcome', CASE WHEN FOUND THEN 'deleted' ELSE 'not_found' END);
END;
$$;
