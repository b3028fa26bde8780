"""A simulated data hall: topology from the inventory, physics as step functions, device views.

`topology` reads the same inventory YAML the monitor polls; `power` and
`thermal` are pure functions of state and time; `model.HallModel` holds the
state, applies faults and advances with a `SimClock`; `views` shows each
device through the metric vocabulary (`ValueSource`) for any protocol front end.
"""
