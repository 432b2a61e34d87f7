-- tasktable schema 1: tasks, their files, live workers, the schema version.
-- utf8mb4_bin: names, queues and keys compare exactly, as on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS tasktable_task (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    handler VARCHAR(255) NOT NULL,
    args MEDIUMTEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    messages MEDIUMTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    executed_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    action_link TEXT NULL,
    queue VARCHAR(100) NOT NULL,
    priority INTEGER NOT NULL,
    run_at DATETIME(6) NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout FLOAT NULL,
    progress_done BIGINT NULL,
    progress_total BIGINT NULL,
    error MEDIUMTEXT NULL,
    worker VARCHAR(64) NULL,
    claim_token VARCHAR(32) NULL,
    heartbeat_at DATETIME(6) NULL,
    unique_key VARCHAR(255) NULL,
    active_key VARCHAR(255) NULL,
    cancel_requested BOOL NOT NULL DEFAULT false,
    lost_count INTEGER NOT NULL DEFAULT 0,
    INDEX ix_tasktable_task_claim (status, queue, priority DESC, id),
    INDEX ix_tasktable_task_status_finished (status, finished_at),
    INDEX ix_tasktable_task_status_heartbeat (status, heartbeat_at),
    INDEX ix_tasktable_task_created (created_at),
    UNIQUE INDEX ux_tasktable_task_active_key (active_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS tasktable_file (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id BIGINT NOT NULL,
    filename VARCHAR(255) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size BIGINT NOT NULL,
    content LONGBLOB NOT NULL,
    created_at DATETIME(6) NOT NULL,
    CONSTRAINT ux_tasktable_file_task_filename UNIQUE (task_id, filename)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS tasktable_worker (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    hostname VARCHAR(255) NOT NULL,
    pid INTEGER NOT NULL,
    slots INTEGER NOT NULL,
    queues VARCHAR(1000) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    heartbeat_at DATETIME(6) NOT NULL,
    INDEX ix_tasktable_worker_heartbeat (heartbeat_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
