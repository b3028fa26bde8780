"""Test helpers, imported as `tests.support.<module>`: real servers started on free
loopback ports (servers, snmpd, mosquitto_server, alertmanager_server,
prometheus_server, snmpsim_server), stand-ins for services no test machine can
reach (paging_services), rigs that wire the monitor for a test (alert_rig,
board_rig, grafana/, drill/), peers and helpers per protocol (mqtt_helpers,
modbus_peers, pysnmp_oracle), and the one wait-until helper (waiting)."""
