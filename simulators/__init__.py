"""Device simulators (UPS over SNMP) for development and end-to-end tests.

Example::

    from simulators import UpsSimulator, fleet
    async with UpsSimulator(fleet(3), port=0, speed=60) as sim:
        host, port = sim.agent.address
        sim.set_utility(False, "ups2")
"""

from dcim.clock import SimClock
from simulators.runner import UpsSimulator, UpsSpec, fleet, main
from simulators.snmp_agent import SnmpAgent, V3User, serve
from simulators.ups import UpsModel, UpsState

__all__ = [
    "SimClock",
    "SnmpAgent",
    "UpsModel",
    "UpsSimulator",
    "UpsSpec",
    "UpsState",
    "V3User",
    "fleet",
    "main",
    "serve",
]
