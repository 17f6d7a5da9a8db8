"""``jobmon-worker``: wraps one task instance's command on the execution host and reports on it."""
