"""The fault drill's rig: the monitor as a process, its parts, the points it checks."""
