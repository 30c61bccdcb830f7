"""The HTTP API: the seed's endpoints, Prometheus metrics, served by hypercorn on trio."""
