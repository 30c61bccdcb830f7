"""The HTTP API on FastAPI: app.py (routes), schemas.py (bodies), inputs.py (request parsing),
auth.py (token, Host guard, body cap), errors.py (one JSON error shape), metrics.py (Prometheus),
server.py (hypercorn on trio). Imported by ``uptimelab serve`` and tests only."""
