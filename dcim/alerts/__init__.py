"""Alert engine: rules as data, incidents with a lifecycle, notifications.

Kept import-light on purpose: `dcim.inventory` imports `dcim.alerts.config`.
The runner uses `dcim.alerts.service.AlertEngine`.
"""
