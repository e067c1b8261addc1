"""Exposition: the family table rendered for Prometheus at scrape time, and the HTTP endpoint serving it.

``collector`` builds the families from owners' snapshots, ``text`` renders the text format fast,
``server`` answers /metrics, /healthz and /readyz (TLS and basic auth from ``webconfig``), and
``probe`` is the healthcheck client of that endpoint.
"""
