"""Reliability analytics over pings, in pandas: loaders, windows, outages, latency, tables,
collector health, plots. The public faces are ``uptimelab.stats``, ``uptimelab.analysis`` and
``uptimelab.plots``."""
