"""Device simulators (UPS over SNMP) for development and end-to-end tests."""
