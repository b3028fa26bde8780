"""Running dcim as a service: supervision, self-monitoring endpoints, heartbeats, reload."""
