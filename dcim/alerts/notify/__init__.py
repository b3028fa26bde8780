"""Notification channels (one module each) and the dispatcher that routes and retries."""
