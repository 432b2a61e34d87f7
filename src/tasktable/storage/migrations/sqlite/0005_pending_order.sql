-- tasktable schema 5: the pending rows in claim order over every queue (see the
-- PostgreSQL migration of the same number). SQLite's claim reads each queue's rows
-- in the claim index's order already; the index is here so that every database has
-- the same schema, and so that a one-queue-at-a-time read is not the only way in.
-- Partial: only pending rows are in it.
CREATE INDEX IF NOT EXISTS ix_tasktable_task_pending
    ON tasktable_task (status, priority DESC, id) WHERE status = 'pending';
