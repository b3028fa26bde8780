"""Grafana dashboards generated from the inventory and the metric vocabulary.

Plain typed JSON models (frozen dataclasses in `model`), not the
grafana-foundation-sdk builders, generate the dashboards, because:

- the SDK has no InfluxDB query type (no InfluxQL target builder), so every
  query would still be a hand-written dict inside its builders;
- it ships one wheel per Grafana version under epoch-stamped version numbers
  (`1769699379!11.6.0` sorts below `1769699998!10.1.0`), an awkward runtime
  dependency for a monitor that otherwise needs none of it;
- we emit a small, fixed subset of the dashboard model; dataclasses keep that
  subset typed (mypy strict) and the output byte-for-byte deterministic.

The SDK's types are still the reference: the tests decode every generated
dashboard with them and fail on any key or value type Grafana's model lacks.

Modules: `model` (JSON model, layout), `influxql` (query text), `panels`
(house-style panel factories), `variables` (template variables), `views/*`
(one module per dashboard), `build` (all dashboards of a config), `layout`
(inventory loading without secrets), `export` (files and provisioning YAML),
`push` (Grafana HTTP API via grafana-client).
"""
