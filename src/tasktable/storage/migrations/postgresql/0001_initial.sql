-- tasktable schema 1: tasks, their files, live workers, the schema version.
CREATE TABLE IF NOT EXISTS tasktable_task (
    id BIGSERIAL NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    handler VARCHAR(255) NOT NULL,
    args TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    messages TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    executed_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    action_link TEXT,
    queue VARCHAR(100) NOT NULL,
    priority INTEGER NOT NULL,
    run_at TIMESTAMP WITH TIME ZONE NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout FLOAT,
    progress_done BIGINT,
    progress_total BIGINT,
    error TEXT,
    worker VARCHAR(64),
    claim_token VARCHAR(32),
    heartbeat_at TIMESTAMP WITH TIME ZONE,
    unique_key VARCHAR(255),
    active_key VARCHAR(255),
    cancel_requested BOOLEAN DEFAULT false NOT NULL,
    lost_count INTEGER DEFAULT 0 NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_tasktable_task_claim ON tasktable_task (status, queue, priority DESC, id);
CREATE INDEX IF NOT EXISTS ix_tasktable_task_status_finished ON tasktable_task (status, finished_at);
CREATE INDEX IF NOT EXISTS ix_tasktable_task_status_heartbeat ON tasktable_task (status, heartbeat_at);
CREATE INDEX IF NOT EXISTS ix_tasktable_task_created ON tasktable_task (created_at);
CREATE UNIQUE INDEX IF NOT EXISTS ux_tasktable_task_active_key ON tasktable_task (active_key);
CREATE TABLE IF NOT EXISTS tasktable_file (
    id BIGSERIAL NOT NULL PRIMARY KEY,
    task_id BIGINT NOT NULL,
    filename VARCHAR(255) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size BIGINT NOT NULL,
    content BYTEA NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT ux_tasktable_file_task_filename UNIQUE (task_id, filename)
);
CREATE TABLE IF NOT EXISTS tasktable_worker (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    hostname VARCHAR(255) NOT NULL,
    pid INTEGER NOT NULL,
    slots INTEGER NOT NULL,
    queues VARCHAR(1000) NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    heartbeat_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_tasktable_worker_heartbeat ON tasktable_worker (heartbeat_at);
