"""Modbus collector: pymodbus 3 client, register-map planning, the shared value codec."""
