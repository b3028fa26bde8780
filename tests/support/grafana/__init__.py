"""What the Grafana tests share: a site, the generated model checked, a live Grafana, the hall run."""
