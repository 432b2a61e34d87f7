-- tasktable schema 4: dashboard sessions, kept server-side so that a logout
-- ends a session for good and a restart keeps them. The cookie carries a
-- random secret; only its SHA-256 is stored. `credential` is a digest of the
-- user's password hash at login: a new password ends the older sessions.
CREATE TABLE IF NOT EXISTS tasktable_session (
    id_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    credential VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_tasktable_session_user ON tasktable_session (user_id);
CREATE INDEX IF NOT EXISTS ix_tasktable_session_expires ON tasktable_session (expires_at);
