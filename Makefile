# make demo   - set up and run the monitor on simulated devices (no server needed)
# make test   - set up, install the real servers the tests use, lint, type-check, test
# make check  - lint, type-check and check the import direction only
# make i18n   - re-extract the board's messages and merge them into every catalog
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := influxdb victoria-metrics snmp snmpd snmptrapd mosquitto mosquitto-clients mbpoll \
	nut-snmp nut-server nut-client prometheus-alertmanager prometheus systemd python3-venv \
	chromium chromium-driver etcd-server
# binaries that tell whether the packages above are present
SERVER_BINARIES := /usr/bin/influxd /usr/bin/victoria-metrics /usr/bin/snmpwalk /usr/sbin/snmpd /usr/sbin/snmptrapd \
	/usr/sbin/mosquitto /usr/bin/mosquitto_sub /usr/bin/mbpoll /lib/nut/snmp-ups /sbin/upsd \
	/usr/bin/upsc /usr/bin/prometheus-alertmanager /usr/bin/prometheus /usr/bin/systemd-analyze \
	/usr/bin/chromium /usr/bin/chromedriver /usr/bin/etcd

.PHONY: demo test check servers clean dashboards bench i18n sparkplug-proto

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
	$(BIN)/lint-imports

test: $(BIN)/.installed servers check
	$(BIN)/pytest $(PYTEST_ARGS)

# SNMP polling at scale: the real monitor (sink, traps, MQTT, alerts) and, in the same run,
# the Go prometheus-snmp-exporter; results in var/bench-snmp.json, the README table printed
BENCH_PACKAGES := prometheus-snmp-exporter victoria-metrics mosquitto
BENCH_BINARIES := /usr/bin/prometheus-snmp-exporter /usr/bin/victoria-metrics /usr/sbin/mosquitto
BENCH_ARGS ?= --devices 1000 --interval 30 --duration 60 --phases monitor,fast,exporter
bench: $(BIN)/.installed
	@missing=0; for b in $(BENCH_BINARIES); do [ -x $$b ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing Debian packages: $(BENCH_PACKAGES)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null; \
	fi
	mkdir -p var && $(BIN)/dcim bench snmp $(BENCH_ARGS) --json var/bench-snmp.json
	$(BIN)/dcim bench report var/bench-snmp.json --markdown

i18n: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -o dcim/locale/dcim.pot --project dcim --no-location \
		--sort-output --omit-header .
	$(BIN)/pybabel update -i dcim/locale/dcim.pot -d dcim/locale -D dcim --no-fuzzy-matching \
		--ignore-obsolete

dashboards: $(BIN)/.installed
	$(BIN)/dcim grafana export dashboards --config dcim/examples/site.yaml

# Regenerate the Sparkplug B payload module after editing its .proto (protoc from grpcio-tools,
# installed into a throwaway venv: the monitor itself needs only the protobuf runtime).
sparkplug-proto:
	python3 -m venv /tmp/dcim-protoc && /tmp/dcim-protoc/bin/pip install -q grpcio-tools
	cd collectors/mqtt/sparkplug && /tmp/dcim-protoc/bin/python -m grpc_tools.protoc -I. \
		--python_out=. --pyi_out=. dcim_sparkplug_b.proto

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
