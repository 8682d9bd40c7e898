"""notifier: consented, idempotent delivery over LINE, app push and email (issue 7)."""
