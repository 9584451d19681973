"""Locust load kit of the sandbox: `locust -f load/locustfile.py` (see the README, "Load testing with Locust")."""
