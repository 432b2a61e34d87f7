-- tasktable schema 4: dashboard sessions, kept server-side so that a logout
-- ends a session for good and a restart keeps them. The cookie carries a
-- random secret; only its SHA-256 is stored. `credential` is a digest of the
-- user's password hash at login: a new password ends the older sessions.
CREATE TABLE IF NOT EXISTS tasktable_session (
    id_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    credential VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    INDEX ix_tasktable_session_user (user_id),
    INDEX ix_tasktable_session_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
