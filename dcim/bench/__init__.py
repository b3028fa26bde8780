"""The benchmark harness (`dcim bench ...`): not part of the monitor, measures it.

    pipeline   readings/s through the bus into a sink (`dcim bench pipeline`)
    snmp       SNMP polling at scale vs prometheus-snmp-exporter (`dcim bench snmp`)
    report     the README table from `bench snmp --json` results (`dcim bench report`)
    codec      polls per CPU-second of the SNMP client (`python -m dcim.bench.codec`)
    phases     one phase in a fresh interpreter; `child` starts it
    pollers    the `fast` phase: the monitor's collectors and pollers alone
    monitor    the `monitor` phase: the whole monitor, in its own process
    drive      drives the monitor phase: servers, events, SSE clients, figures
    events     the traps and MQTT messages that cross rules during the monitor phase
    exporter   the `exporter` phase: prometheus-snmp-exporter, scraped on schedule
    agent      the simulated fleet's agent processes
    fleet      the simulated fleet as an inventory
    servers    the sink and broker servers a phase starts
    sse        board clients (server-sent events) kept open during a phase
    udp        the kernel's UDP queues, watched during a phase
    measure    CPU, memory, percentiles, timed polls

It may import the collectors and the simulators; the core imports none of it.
"""
