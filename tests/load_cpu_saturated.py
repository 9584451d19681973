"""A second locustfile for tests/test_load.py: Locust's own CPU monitor samples every half second and
finds any use above -1 %, so a short run is flagged as one whose load generator saturated its CPU."""

import locust.runners

locust.runners.CPU_MONITOR_INTERVAL = 0.5
locust.runners.CPU_WARNING_THRESHOLD = -1
