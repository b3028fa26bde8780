"""Grafana dashboards generated from the inventory, the metric vocabulary and the alert rules.

Dashboards are built with grafana-foundation-sdk (Grafana Labs' generated model
of Grafana 11.6, a runtime dependency pinned exactly: its versions are epoch
stamped), so the JSON has the shape Grafana itself saves. The SDK has no InfluxDB
query type; `model` adds the InfluxQL query and annotation target as Grafana's
InfluxDB plugin stores them.

Modules: `model` (SDK glue, InfluxQL query type, layout), `influxql` (query
text), `thresholds` (colours from the loaded alert rules), `states` (enum texts),
`panels` (house-style panel builders), `variables`, `events` (annotations, open
incidents), `views/*` (one module per dashboard), `build` (all dashboards of a
config), `layout` (inventory loading without secrets), `export` (files and
provisioning YAML), `push` (Grafana HTTP API via grafana-client).
"""
