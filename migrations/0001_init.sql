-- Conversation API: the whole data model.
-- Plain SQL for PostgreSQL 15+, Supabase and PGlite. Applied once by the
-- migration runner, which records it in schema_migrations.

-- Keeps updated_at current on every UPDATE of a row.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- Accounts. E-mails are stored normalised to lower case.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Opaque refresh tokens, stored as SHA-256 hashes. A token belongs to a
-- family (one login); rotation marks the old token used and issues the next
-- in the same family; reuse of a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    replaced_by uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- API keys (`cak_…`), stored as SHA-256 hashes with a short visible prefix.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL,
    key_hash     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

-- Conversations. message_count and updated_at are kept by the messages trigger.
CREATE TABLE conversations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         text CHECK (length(title) <= 200),
    model         text NOT NULL,
    system_prompt text CHECK (length(system_prompt) <= 8000),
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    message_count integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Listing and cursor pagination: newest updated_at first, per owner.
CREATE INDEX conversations_owner_updated_idx ON conversations (user_id, updated_at DESC, id DESC);
CREATE TRIGGER conversations_updated_at BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Messages. seq gives a total order (several messages can share a timestamp).
CREATE TABLE messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    thinking        text,
    model           text,
    provider        text CHECK (provider IN ('groq', 'gemini')),
    status          text NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'incomplete', 'error')),
    input_tokens    integer CHECK (input_tokens >= 0),
    output_tokens   integer CHECK (output_tokens >= 0),
    -- Tokens of this message's own text, for the context window (so history
    -- is not re-tokenised on every send).
    content_tokens  integer CHECK (content_tokens >= 0),
    cost_usd        numeric(20, 10) NOT NULL DEFAULT 0,
    latency_ms      integer CHECK (latency_ms >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_seq_key UNIQUE (seq)
);
-- History in order, per conversation (and its cursor pagination).
CREATE INDEX messages_conversation_seq_idx ON messages (conversation_id, seq);
CREATE INDEX messages_user_idx ON messages (user_id);

-- Keeps conversations.message_count and updated_at right as messages come and go.
CREATE OR REPLACE FUNCTION messages_touch_conversation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE conversations
           SET message_count = message_count + 1
         WHERE id = NEW.conversation_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE conversations
           SET message_count = greatest(message_count - 1, 0)
         WHERE id = OLD.conversation_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_touch_conversation AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_touch_conversation();

-- One row per model call (answers and titles, failed attempts included),
-- for cost tracking and /usage/stats. Kept when a conversation is deleted.
CREATE TABLE usage_ledger (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL,
    message_id      uuid REFERENCES messages (id) ON DELETE SET NULL,
    kind            text NOT NULL CHECK (kind IN ('answer', 'title')),
    model           text NOT NULL,
    provider        text NOT NULL CHECK (provider IN ('groq', 'gemini')),
    input_tokens    integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens   integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd        numeric(20, 10) NOT NULL DEFAULT 0,
    latency_ms      integer CHECK (latency_ms >= 0),
    success         boolean NOT NULL,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_ledger_user_created_idx ON usage_ledger (user_id, created_at);

-- Idempotent sends: the first result for (user, key) is kept for 24 h.
CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    text NOT NULL,
    conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress', 'complete')),
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
