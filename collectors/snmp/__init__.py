"""SNMP collector: pysnmp 7 client, request plan, value decoding, glue."""
