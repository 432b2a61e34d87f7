-- tasktable schema 2: who may use the REST API and the dashboard.
-- Users log in with a password (an argon2id hash); API tokens are random and
-- stored as their SHA-256; failed logins are counted for rate limiting.
CREATE TABLE IF NOT EXISTS tasktable_user (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(150) NOT NULL,
    role VARCHAR(16) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL,
    last_login_at DATETIME,
    CONSTRAINT ux_tasktable_user_name UNIQUE (name)
);
CREATE TABLE IF NOT EXISTS tasktable_token (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(100) NOT NULL,
    role VARCHAR(16) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    prefix VARCHAR(16) NOT NULL,
    created_at DATETIME NOT NULL,
    last_used_at DATETIME,
    CONSTRAINT ux_tasktable_token_name UNIQUE (name),
    CONSTRAINT ux_tasktable_token_hash UNIQUE (token_hash)
);
CREATE TABLE IF NOT EXISTS tasktable_login_failure (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    subject VARCHAR(255) NOT NULL,
    failed_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_tasktable_login_failure_subject ON tasktable_login_failure (subject, failed_at);
