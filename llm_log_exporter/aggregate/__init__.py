"""Aggregation: events → counters, histograms and gateway state, kept in plain dicts keyed by label tuples.

``families`` declares every metric family; ``ingest`` turns lines into events and applies them to the
``store`` (``usage`` records, ``labels`` guards, ``streams``, ``breaker``, ``budgets``; costs from
``prices``); ``checkpoint`` saves and restores it all with the read positions.
"""
