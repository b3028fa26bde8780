"""dcim: data-center infrastructure monitor (core: config, readings, pipeline, sinks, CLI)."""

__version__ = "0.1.0"
