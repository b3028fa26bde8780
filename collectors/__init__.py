"""Protocol adapters (SNMP, Modbus, MQTT) and their profiles. They depend on the core
(`dcim`); the core never imports them (`lint-imports` checks it): the application
hands the monitor `collectors.registry.CollectorFactory`."""
