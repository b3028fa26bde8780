"""Sparkplug B (Eclipse Sparkplug 3.0) for the MQTT collector: payload schema and edge-node sessions."""
