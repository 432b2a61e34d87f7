"""The worker, in small parts: executor, slots, heartbeat, rescuer, cleaner, supervisor."""
