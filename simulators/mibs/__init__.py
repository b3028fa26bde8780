"""SNMP views of hall devices, one module per vendor MIB (each cites the MIB it follows)."""
