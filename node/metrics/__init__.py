"""The node's Prometheus metrics (docs/operating.md "Metrics"): loads.py (what each media
worker reports), collector.py (the registry and what a scrape reads), site.py (the
separate ``/metrics`` site and the event-loop lag probe)."""
