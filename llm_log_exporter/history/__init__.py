"""History: finished logs read in event-time order, for ``replay`` (an OpenMetrics backfill) and ``report``.

``sources`` opens inputs (files, directories, globs, stdin, gzip, JSON documents), ``timeline`` merges
their events in time order, ``replay`` drives the live aggregation through event time and ``backfill``
writes its snapshots; ``report`` sums them for the terminal; ``commands`` is the glue the CLI calls.
Counting is the daemon's own: the CLI hands in the store and ingestor it builds for the daemon.
"""
