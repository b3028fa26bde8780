"""SNMP: the client (v1/v2c/v3 on a lean codec), request plans, value decoding, the
collector, discovery, `dcim walk` recording, and the trap receiver."""
