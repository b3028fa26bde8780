# make demo   - set up and run the monitor on simulated devices (no server needed)
# make test   - set up, install the real servers the tests use, lint, type-check, test
# make check  - lint and type-check only
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := influxdb victoria-metrics snmp snmpd snmptrapd mosquitto mosquitto-clients mbpoll \
	nut-snmp nut-server nut-client prometheus-alertmanager python3-venv
# binaries that tell whether the packages above are present
SERVER_BINARIES := /usr/bin/influxd /usr/bin/victoria-metrics /usr/bin/snmpwalk /usr/sbin/snmpd /usr/sbin/snmptrapd \
	/usr/sbin/mosquitto /usr/bin/mosquitto_sub /usr/bin/mbpoll /lib/nut/snmp-ups /sbin/upsd \
	/usr/bin/upsc /usr/bin/prometheus-alertmanager

.PHONY: demo test check servers clean dashboards bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/dcim demo $(DEMO_ARGS)

servers:
	@missing=0; for b in $(SERVER_BINARIES); do [ -x $$b ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	fi

check: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(BIN)/.installed servers check
	$(BIN)/pytest $(PYTEST_ARGS)

# SNMP polling at scale, side by side with the Go prometheus-snmp-exporter
bench: $(BIN)/.installed
	@[ -x /usr/bin/prometheus-snmp-exporter ] || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-snmp-exporter >/dev/null; }
	mkdir -p var && $(BIN)/dcim bench snmp --devices 1000 --interval 30 --duration 60 --json var/bench-snmp.json

dashboards: $(BIN)/.installed
	$(BIN)/dcim grafana export dashboards --config dcim/examples/site.yaml

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
