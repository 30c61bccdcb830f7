"""Tools for tests, demos and benchmarks: the zoo of simulated sites, synthetic history, bench and
perf. Only ``ops`` and ``cli`` use them."""
