-- tasktable schema 3: what the worker needs beyond schema 1.
-- rerun_on_loss: a task whose handler must not run again after its worker was
-- lost ends `error` instead of going back to pending (copied from the handler
-- at enqueue, so the rescuer never imports handlers).
-- tasktable_periodic: the last tick enqueued per periodic task, so that each
-- tick is enqueued once however many workers run the scheduler.
ALTER TABLE tasktable_task ADD COLUMN rerun_on_loss BOOLEAN DEFAULT 1 NOT NULL;
CREATE TABLE IF NOT EXISTS tasktable_periodic (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    last_tick DATETIME NOT NULL
);
