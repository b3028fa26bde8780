"""Sinks: where readings are stored (InfluxDB v1/v2, a line-protocol file)."""
